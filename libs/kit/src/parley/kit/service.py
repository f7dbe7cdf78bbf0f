"""FastStream bootstrap shared by every service: broker, health subject, tracing, logs.

Also the two pieces every service's ``app.py`` wires the same way: a command route (decode,
handle, every exception becomes an error reply) and the ordered shutdown of what start-up
opened.
"""

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
import nats
from faststream import FastStream
from faststream.nats import NatsBroker, NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.specification import AsyncAPI
from nats.aio.client import Client

from parley.contracts import subjects
from parley.contracts.envelope import acting_as
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store
from parley.kit.logs import configure_logging
from parley.kit.settings import ServiceSettings
from parley.kit.telemetry import carried_actor, setup_tracing

__all__ = [
    "Closers",
    "add_command_route",
    "add_command_routes",
    "connect_store",
    "create_service",
]

_encode = msgspec.json.Encoder().encode
H = TypeVar("H")


def create_service(
    name: str,
    settings: ServiceSettings,
    register: Callable[[NatsBroker], None],
    *,
    description: str = "",
) -> FastStream:
    """A FastStream app for service ``name`` with its handlers registered by ``register``.

    Adds the health subject ``parley.health.<name>``, OpenTelemetry spans continued from the
    ``traceparent`` header of each message, and JSON logs. FastStream's per-message log is
    off: it costs about a third of the request rate (DESIGN.md, performance figures).
    """
    configure_logging(name, settings.log_level)
    provider = setup_tracing(name, settings.otlp_endpoint)
    broker = NatsBroker(
        settings.nats_url,
        name=f"parley-{name}",
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger(f"parley.{name}.broker"),
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
    )
    started = time.monotonic()

    @broker.subscriber(subjects.health(name), title=f"{name}.health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "service": name, "uptime_s": round(time.monotonic() - started, 3)}

    register(broker)
    return FastStream(
        broker,
        logger=logging.getLogger(f"parley.{name}"),
        specification=AsyncAPI(title=f"parley-{name}", version="1", description=description),
    )


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
        queue=subjects.queue(service),
        max_workers=max_workers,
        title=f"{service}.{verb}",
        description=f"Command: {command_type.__doc__}",
    )
    async def handler(msg: NatsMessage) -> bytes:
        reply: msgspec.Struct
        with acting_as(carried_actor(msg.headers)):
            try:
                reply = await handle(decoder.decode(msg.body))
            except Exception as exc:  # every failure becomes an error reply
                reply = on_error(exc)
        return _encode(reply)


def add_command_routes(
    broker: NatsBroker,
    service: str,
    routes: Mapping[str, tuple[type[Any], Callable[[H, Any], Awaitable[msgspec.Struct]]]],
    handlers: Callable[[], H],
    *,
    on_error: Callable[[Exception], msgspec.Struct],
    max_workers: int,
) -> None:
    """Serve every ``verb → (command type, handle)`` of ``routes``; ``handle`` gets the
    service's handlers (built at start-up, hence ``handlers()``) and the decoded command."""
    for verb, (command_type, handle) in routes.items():
        add_command_route(
            broker,
            service,
            verb,
            command_type,
            functools.partial(_with_handlers, handle, handlers),
            on_error=on_error,
            max_workers=max_workers,
        )


async def _with_handlers(
    handle: Callable[[H, Any], Awaitable[msgspec.Struct]], handlers: Callable[[], H], command: Any
) -> msgspec.Struct:
    return await handle(handlers(), command)


async def connect_store(
    settings: ServiceSettings, name: str, closers: "Closers"
) -> tuple[Client, EventStore]:
    """Connect to NATS (reconnecting for ever) and open the event store on that connection;
    both are closed by ``closers`` at shutdown."""
    nc = await nats.connect(
        settings.nats_url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5
    )
    closers.add(nc.drain)
    store = await open_store(
        backend=settings.eventstore,
        nats_url=settings.nats_url,
        kurrentdb_url=settings.kurrentdb_url,
        nc=nc,
    )
    closers.add(store.close)
    return nc, store


class Closers:
    """What start-up opened, closed in reverse order; one failure does not stop the rest."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def add(self, close: Callable[[], Awaitable[None]]) -> None:
        """Close ``close`` at shutdown, before everything added earlier."""
        self._closers.append(close)

    async def close(self) -> None:
        """Run every closer, last added first, logging (not raising) their errors."""
        while self._closers:
            close = self._closers.pop()
            try:
                await close()
            except Exception:
                self._log.exception("error while shutting down")
