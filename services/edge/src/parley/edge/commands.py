"""The command client: NATS request/reply to ``parley.cmd.<service>.<verb>``.

The request carries the command as msgspec JSON, the W3C ``traceparent`` of the current span
and ``Parley-Request-Id``; the reply is the service's reply type (:class:`CommandReply` from
the registry, :class:`RuntimeReply` from the runtime). Error replies, missing services and
timeouts all come back as :class:`ApiError`.
"""

import logging
from typing import Any
from typing import TypeVar

import msgspec
import nats.errors
from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from parley.contracts import subjects
from parley.contracts.acl import MessageReply
from parley.contracts.deployments import DeploymentReply
from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.errors import ErrorCode
from parley.contracts.identity import ApiKeyReply
from parley.contracts.memory import MemoryReply
from parley.contracts.memory import MemorySearchReply
from parley.contracts.registry import CommandReply
from parley.contracts.runtime import RuntimeReply
from parley.contracts.tasks import TaskReply
from parley.edge.http.errors import ApiError
from parley.kit.telemetry import extract
from parley.kit.telemetry import inject

__all__ = ["REQUEST_ID_HEADER", "CommandClient", "Reply"]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "Parley-Request-Id"
_encode = msgspec.json.Encoder().encode
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    CommandReply: msgspec.json.Decoder(CommandReply),
    RuntimeReply: msgspec.json.Decoder(RuntimeReply),
    MessageReply: msgspec.json.Decoder(MessageReply),
    TaskReply: msgspec.json.Decoder(TaskReply),
    ApiKeyReply: msgspec.json.Decoder(ApiKeyReply),
    DeploymentReply: msgspec.json.Decoder(DeploymentReply),
    MemoryReply: msgspec.json.Decoder(MemoryReply),
    MemorySearchReply: msgspec.json.Decoder(MemorySearchReply),
}
Reply = TypeVar(
    "Reply",
    CommandReply,
    RuntimeReply,
    MessageReply,
    TaskReply,
    ApiKeyReply,
    DeploymentReply,
    MemoryReply,
    MemorySearchReply,
)
"""A service's reply type."""
_tracer = trace.get_tracer("parley.edge")


class CommandClient:
    """Sends commands to services and turns their replies into results or API errors."""

    def __init__(self, nc: Client, timeout: float) -> None:
        self.nc, self.timeout = nc, timeout

    async def request(
        self,
        service: str,
        verb: str,
        command: msgspec.Struct,
        reply_type: type[Reply],
        *,
        request_id: str,
        traceparent: str | None = None,
        within: float | None = None,
        actor: str | None = None,
    ) -> Reply:
        """Send ``command`` to ``parley.cmd.<service>.<verb>`` and wait for its reply.

        Args:
            service: ``registry``, ``runtime``, ``messaging`` or ``tasks``.
            verb: The command's verb, e.g. ``create_agent`` or ``chat``.
            command: The command struct.
            reply_type: The service's reply type, e.g. ``CommandReply``.
            request_id: The HTTP request's id, sent as ``Parley-Request-Id``.
            traceparent: The caller's W3C trace context, continued by this hop's span.
            within: Seconds to wait for the reply (default: the client's).
            actor: Id of the principal the command acts for, sent as ``Parley-Actor``.

        Returns:
            The successful reply (``ok`` is true).

        Raises:
            ApiError: the service's error, ``SERVICE_UNAVAILABLE`` (no responders or NATS
                down), ``TIMEOUT`` or ``INTERNAL_ERROR`` (an unreadable reply).
        """
        wait = self.timeout if within is None else within
        subject = subjects.cmd(service, verb)
        try:
            payload = _encode(command)
        except (UnicodeEncodeError, ValueError, TypeError) as exc:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"request cannot be encoded: {exc}") from None
        # inside the request's server span, continue it; else the caller's traceparent
        in_request = trace.get_current_span().get_span_context().is_valid
        parent = (
            None if in_request else extract({"traceparent": traceparent} if traceparent else None)
        )
        with _tracer.start_as_current_span(
            f"{subject} send", context=parent, kind=SpanKind.CLIENT
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            headers = inject({REQUEST_ID_HEADER: request_id})
            if actor is not None:
                headers[ACTOR_HEADER] = actor
            if traceparent and "traceparent" not in headers:
                headers["traceparent"] = traceparent
            try:
                msg = await self.nc.request(subject, payload, timeout=wait, headers=headers)
            except nats.errors.NoRespondersError:
                raise ApiError(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    f"the {service} service is not running; retry shortly",
                    headers={"Retry-After": "1"},
                ) from None
            except (nats.errors.TimeoutError, TimeoutError):
                raise ApiError(
                    ErrorCode.TIMEOUT,
                    f"the {service} service did not answer within {wait:g}s; the change"
                    " may still be applied: read the resource before retrying",
                ) from None
            except nats.errors.Error as exc:
                log.warning("command %s failed on NATS: %r", subject, exc)
                raise ApiError(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    "the message bus is unavailable; retry shortly",
                    headers={"Retry-After": "1"},
                ) from None
        try:
            reply: Reply = _decoders[reply_type].decode(msg.data)
        except msgspec.DecodeError:
            log.error("unreadable reply on %s: %r", subject, msg.data[:200])
            raise ApiError(ErrorCode.INTERNAL_ERROR, "internal error") from None
        if not reply.ok:
            if reply.error is None:
                raise ApiError(ErrorCode.INTERNAL_ERROR, "internal error")
            raise ApiError.from_body(reply.error)
        return reply
