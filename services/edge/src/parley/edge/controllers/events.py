"""``POST /api/v1/events``: record a custom event (the stream itself is
:mod:`parley.edge.streams.sse`)."""

import hashlib
import re
import uuid
from typing import Annotated
from typing import Any

import msgspec
from litestar import Request
from litestar import post
from litestar.di import NamedDependency
from msgspec import Meta

from parley.contracts.envelope import Event
from parley.contracts.envelope import EventType
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Store
from parley.edge.http.auth import principal
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError
from parley.edge.http.request_ids import request_id
from parley.eventstore.port import ANY_VERSION
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import EventStoreUnavailable
from parley.eventstore.port import EventTooLarge

__all__ = ["RESERVED_PREFIXES", "CustomEvent", "publish_event"]

RESERVED_PREFIXES: tuple[str, ...] = (
    "agent.",
    "agent_name.",
    "task.",
    "cluster.",
    "session.",
    "message.",
    "execution.",
    "deployment.",
    "tool.",
    "budget.",
)
"""Event type prefixes only the platform may emit."""

_IDEMPOTENCY = uuid.UUID("5b0f6c1e-3d0a-4f59-9c47-6a2d1f0e8b11")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class CustomEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A custom event a client records (`POST /api/v1/events`)."""

    type: EventType
    """Dotted lowercase type outside the platform's prefixes, e.g. `custom.order_placed`."""
    subject: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    """What the event is about; also names its stream (`custom-<subject>`)."""
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """The payload."""
    stream: Annotated[str, Meta(min_length=1, max_length=160)] | None = None
    """Stream to append to: `custom-<id>` or a bare `<id>` (default: from `subject`)."""


@post(
    "/api/v1/events",
    status_code=201,
    summary="Record a custom event",
    opt={"body": CustomEvent},
)
async def publish_event(
    request: Request[Any, Any, Any], store: Store, ns: NamedDependency[str]
) -> Data[Event]:
    """Append a custom event to ``custom-<subject>`` in the request's namespace (the caller
    as its actor); ``Idempotency-Key`` appends once."""
    body = await decode_body(request, CustomEvent)
    if body.type.startswith(RESERVED_PREFIXES):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"event type {body.type!r} uses a reserved platform prefix; "
            "use your own prefix, e.g. `custom.`",
            {"reserved_prefixes": list(RESERVED_PREFIXES)},
        )
    stream = _stream_of(body)
    subject = body.subject or stream.partition("-")[2]
    event_id = _idempotent_id(request)
    new = NewEvent(
        type=body.type,
        subject=subject,
        data=body.data,
        source="/parley/edge",
        namespace=ns,
        correlationid=request_id(request.scope),
        traceparent=_traceparent(request),
    )
    new = _with_actor(new, request)
    if event_id:
        new = msgspec.structs.replace(new, id=event_id)
    try:
        result = await store.append(stream, [new], ANY_VERSION)
        if event_id is not None:
            # A retry may have been stored earlier: answer with what was recorded then.
            recorded = await store.read(stream, result.version)
            if recorded and recorded[0].id == new.id:
                return Data(data=recorded[0])
    except EventTooLarge as exc:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, str(exc)) from None
    except EventStoreUnavailable as exc:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from None
    except EventStoreError as exc:
        raise ApiError(ErrorCode.INTERNAL_ERROR, "the event store refused the event") from exc
    return Data(
        data=Event.record(new, stream=stream, version=result.version, position=result.position)
    )


def _stream_of(body: CustomEvent) -> str:
    """``custom-<id>`` from the body's stream or subject, rewritten to a valid stream id."""
    name = body.stream.removeprefix("custom-") if body.stream else (body.subject or "events")
    safe = _UNSAFE.sub("_", name)[:140]
    if safe != name or not safe:
        safe = f"{safe}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return f"custom-{safe}"


def _idempotent_id(request: Request[Any, Any, Any]) -> str | None:
    """The event id an ``Idempotency-Key`` stands for: the same key, the same id."""
    key = request.headers.get("idempotency-key")
    if not key:
        return None
    if len(key) > 256:
        raise ApiError(ErrorCode.INVALID_REQUEST, "Idempotency-Key is longer than 256 characters")
    return str(uuid.uuid5(_IDEMPOTENCY, key))


def _traceparent(request: Request[Any, Any, Any]) -> str | None:
    value = request.headers.get("traceparent")
    return value if value and _TRACEPARENT.match(value) else None


def _with_actor(new: NewEvent, request: Request[Any, Any, Any]) -> NewEvent:
    """``new`` naming the caller as its actor, once events carry one (the CloudEvents
    extension)."""
    if "actor" not in NewEvent.__struct_fields__:
        return new
    return msgspec.structs.replace(new, actor=principal(request).id)
