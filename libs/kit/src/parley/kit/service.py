"""FastStream bootstrap shared by every service: broker, health subject, tracing, logs, and
the command route (decode, handle as the carried actor, every exception an error reply).

Services do not call this directly: :func:`parley.kit.app.service_app` wires them.
"""

import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from typing import cast

import msgspec
from faststream import FastStream
from faststream.message import StreamMessage
from faststream.nats import NatsBroker
from faststream.nats import NatsUserPassword
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.specification import AsyncAPI
from nats.aio.msg import Msg

from parley.contracts import subjects
from parley.contracts.envelope import acting_as
from parley.kit.logs import configure_logging
from parley.kit.metrics import broker_metrics
from parley.kit.needs import Readiness
from parley.kit.settings import ServiceSettings
from parley.kit.telemetry import carried_actor
from parley.kit.telemetry import setup_tracing

__all__ = ["add_command_route", "create_service", "from_outside"]

C = TypeVar("C", bound=msgspec.Struct)

_encode = msgspec.json.Encoder().encode


def create_service(
    name: str,
    settings: ServiceSettings,
    register: Callable[[NatsBroker], None],
    *,
    description: str = "",
    readiness: Callable[[], Readiness] | None = None,
) -> FastStream:
    """A FastStream app for service ``name`` with its handlers registered by ``register``.

    Adds the health subject ``parley.health.<name>`` (``status`` ``ok``, or ``unavailable``
    with what is missing, or ``stopping``, from ``readiness``), OpenTelemetry spans
    continued from the ``traceparent`` header of each message, and JSON logs. FastStream's
    per-message log is off: it costs about a third of the request rate (DESIGN.md,
    performance figures).
    """
    configure_logging(name, settings.log_level)
    provider = setup_tracing(name, settings.otlp_endpoint, record_content=settings.trace_content)
    password = settings.nats_password()
    broker = NatsBroker(
        settings.nats_servers(),
        # credentials as options, not in the URLs: nats-py adds the cluster's other nodes
        # as it learns of them, and those carry only what the options say
        security=(
            NatsUserPassword(settings.nats_user, password)
            if settings.nats_user is not None and password is not None
            else None
        ),
        name=f"parley-{name}",
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider), broker_metrics(name)],
        logger=_broker_logger(name),
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
    )
    started = time.monotonic()

    @broker.subscriber(subjects.health(name), title=f"{name}.health")
    async def health() -> dict[str, object]:
        uptime = round(time.monotonic() - started, 3)
        if readiness is None:
            return {"status": "ok", "service": name, "uptime_s": uptime}
        now = readiness()
        status = "ok" if now.ready else "stopping" if now.stopping else "unavailable"
        return {"status": status, "service": name, "uptime_s": uptime, **msgspec.to_builtins(now)}

    register(broker)
    return FastStream(
        broker,
        logger=logging.getLogger(f"parley.{name}"),
        specification=AsyncAPI(title=f"parley-{name}", version="1", description=description),
    )


def _broker_logger(service: str) -> logging.Logger:
    """The broker's logger, from WARNING up: FastStream logs at INFO the end of each
    subscriber task as it stops (a line per subscriber at every shutdown)."""
    logger = logging.getLogger(f"parley.{service}.broker")
    logger.setLevel(logging.WARNING)
    return logger


def add_command_route(
    broker: NatsBroker,
    service: str,
    verb: str,
    command_type: type[Any],
    handle: Callable[[Any], Awaitable[msgspec.Struct]],
    *,
    on_error: Callable[[Exception], msgspec.Struct],
    max_workers: int,
) -> None:
    """Serve ``parley.cmd.<service>.<verb>`` in the service's queue group.

    The principal named by the message's ``Parley-Actor`` header is the
    :data:`~parley.contracts.envelope.current_actor` while ``handle`` runs (and in the tasks
    it starts), so the events it records name it.

    Args:
        broker: The service's broker.
        service: The service name (subject, queue group and AsyncAPI title).
        verb: The command's verb.
        command_type: The msgspec Struct the request body decodes to.
        handle: Runs a decoded command and returns the reply.
        on_error: The error reply for any exception raised decoding or handling.
        max_workers: Requests handled at once by this process.
    """
    decoder = msgspec.json.Decoder(command_type)

    @broker.subscriber(
        subjects.cmd(service, verb),
        decoder=_whole_message,
        queue=subjects.queue(service),
        max_workers=max_workers,
        title=f"{service}.{verb}",
        description=f"Command: {command_type.__doc__}",
    )
    async def handler(body: Any) -> bytes:
        msg = cast(StreamMessage[Msg], body)
        reply: msgspec.Struct
        with acting_as(carried_actor(msg.headers)):
            try:
                reply = await handle(decoder.decode(msg.body))
            except Exception as exc:  # every failure becomes an error reply
                reply = on_error(exc)
        return _encode(reply)

    @broker.subscriber(
        subjects.ext_cmd("*", service, verb),
        decoder=_whole_message,
        queue=subjects.queue(service),
        max_workers=max_workers,
        title=f"{service}.{verb} (external)",
        description=f"Command from another system, in the subject's namespace: "
        f"{command_type.__doc__}",
    )
    async def external(body: Any) -> bytes:
        msg = cast(StreamMessage[Msg], body)
        reply: msgspec.Struct
        try:
            command, actor = from_outside(msg.raw_message.subject, decoder.decode(msg.body))
            with acting_as(actor):
                reply = await handle(command)
        except Exception as exc:  # every failure becomes an error reply
            reply = on_error(exc)
        return _encode(reply)


async def _whole_message(msg: StreamMessage[Msg]) -> Any:
    """Hand the handler the whole message, not its decoded body.

    A handler parameter that FastStream resolves from its context (``msg: NatsMessage``) is
    resolved on a worker thread (FastStream's dependency injection runs a context field's
    synchronous ``use`` through ``anyio.to_thread``): a thread hop per command, about 0.2 ms
    of each round trip. Passing the message as the body keeps the handler on the loop.
    """
    return msg


def from_outside(subject: str, command: C) -> tuple[C, str]:
    """A command that came on an external subject (:func:`subjects.ext_cmd`), made to act
    in the subject's namespace, whatever its body said, for the principal ``nats:<namespace>``.

    The NATS server lets the ``external`` user publish only on its namespace's subjects, so
    the subject, not the body or a header, is what can be trusted.
    """
    namespace = subjects.ext_namespace(subject)
    return msgspec.structs.replace(command, namespace=namespace), f"nats:{namespace}"
