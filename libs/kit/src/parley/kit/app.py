"""One way to wire a service: :func:`service_app`.

A service names its command table (verb → command type, handler) and how to build its
handlers once NATS and the event store are open; this module does the rest the same way for
every service: the FastStream app with its health subject and tracing, the NATS connection
(as the settings' NATS user, reconnecting for ever), the event store on that connection, the
command routes (FastStream, or raw nats-py for a hot path), one error reply for every failure,
the process's needs on NATS kept there across server restarts (:class:`~parley.kit.needs.Keeper`:
ensured at start, after every reconnect and when found missing) with the health subject
reporting them, and the ordered shutdown of everything start-up opened (an
:class:`contextlib.AsyncExitStack`): on SIGTERM the health subject says ``stopping`` first,
then the workers (:meth:`Connections.stop_first`) take no more work and finish or hand back
what they hold, then the command routes stop taking requests and finish those in flight,
then the rest closes in reverse order and the connection drains.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Generic
from typing import TypeVar

import msgspec
import nats
import nats.errors
from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from parley.contracts import subjects
from parley.contracts.envelope import acting_as
from parley.eventstore import EventStore
from parley.kit.connect import connect_nats
from parley.kit.connect import open_service_store
from parley.kit.metrics import metered
from parley.kit.metrics import metrics_port
from parley.kit.metrics import serve_metrics
from parley.kit.needs import Keeper
from parley.kit.service import add_command_route
from parley.kit.service import create_service
from parley.kit.service import from_outside
from parley.kit.settings import ServiceSettings
from parley.kit.telemetry import carried_actor
from parley.kit.telemetry import extract

__all__ = ["Connections", "Route", "service_app"]

H = TypeVar("H")
Route = tuple[type[Any], Callable[[H, Any], Awaitable[msgspec.Struct]]]
"""A command's type and its handler, which gets the service's handlers and the command."""

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Connections:
    """What start-up opened for the service; ``stack`` closes what the service adds, and
    ``keeper`` keeps what it needs on NATS (``await connections.keeper.need(...)``)."""

    nc: Client
    js: JetStreamContext
    store: EventStore
    stack: contextlib.AsyncExitStack
    keeper: Keeper
    _first: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def stop_first(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Run ``stop`` (a worker's: stop taking work, finish or hand back what it holds) as
        soon as the process is told to stop, before the command routes close; and with the
        stack, should start-up fail. ``stop`` must be safe to run twice."""
        self._first.append(stop)
        self.stack.push_async_callback(stop)


@dataclass(slots=True)
class _Running(Generic[H]):
    handlers: H | None = None
    connections: Connections | None = None


def service_app(
    name: str,
    settings: ServiceSettings,
    *,
    routes: Mapping[str, Route[H]],
    start: Callable[[Connections], Awaitable[H]],
    reply_error: Callable[[Exception], msgspec.Struct],
    description: str,
    raw: bool = False,
    max_workers: int | None = None,
) -> FastStream:
    """The FastStream app of service ``name``.

    Args:
        name: The service name: its command subjects ``parley.cmd.<name>.<verb>``, queue
            group, health subject and AsyncAPI title.
        settings: The service's settings (already parsed and checked).
        routes: Its command table.
        start: Builds the handlers once NATS and the store are open; whatever it opens it
            registers on ``Connections.stack``, which closes it (last opened, first closed).
        reply_error: The error reply for any exception raised decoding or handling.
        description: One line for the AsyncAPI document.
        raw: Serve the commands with raw nats-py subscriptions (one task per request, a span
            continued from the caller's ``traceparent``) instead of FastStream handlers: for
            hot paths, where FastStream's per-message machinery costs more than the work.
            Either way the handler runs as the principal of the ``Parley-Actor`` header
            (:data:`~parley.contracts.envelope.current_actor`).
        max_workers: Commands handled at once (default ``settings.max_in_flight``).
    """
    log = logging.getLogger(f"parley.{name}")
    workers = max_workers or settings.max_in_flight
    running: _Running[H] = _Running()
    stack = contextlib.AsyncExitStack()
    keeper = Keeper()

    def handlers() -> H:
        if running.handlers is None:
            raise RuntimeError(f"the {name} service is not started")
        return running.handlers

    def register(broker: NatsBroker) -> None:
        if raw:
            return
        for verb, (command_type, handle) in routes.items():
            add_command_route(
                broker,
                name,
                verb,
                command_type,
                metered(name, verb, _bind(handle, handlers)),
                on_error=reply_error,
                max_workers=workers,
            )

    app = create_service(
        name, settings, register, description=description, readiness=keeper.readiness
    )

    @app.on_startup
    async def open_connections() -> None:
        nc = await connect_nats(settings, f"parley-{name}", keeper)
        stack.push_async_callback(nc.drain)

        async def healthy() -> bool:
            return running.handlers is not None and nc.is_connected

        await serve_metrics(name, metrics_port(name, settings.metrics_port), stack, healthy)
        store = await open_service_store(settings, nc)
        stack.push_async_callback(store.close)
        keeper.open(nc, store)
        stack.push_async_callback(keeper.stop)
        running.connections = Connections(nc, nc.jetstream(), store, stack, keeper)
        running.handlers = await start(running.connections)
        if raw:
            await _serve_raw(nc, name, routes, handlers, reply_error, workers, stack)
        keeper.start()

    @app.on_shutdown
    async def stop_taking_work() -> None:
        keeper.stopping()  # first: the health subject says so while the rest stops
        if running.connections is not None:
            for stop in running.connections._first:
                try:
                    await stop()
                except Exception:
                    log.exception("error while stopping a worker")

    @app.after_shutdown
    async def close_connections() -> None:
        running.handlers = None
        try:
            await stack.aclose()
        except Exception:
            log.exception("error while shutting down")

    return app


def _bind(
    handle: Callable[[H, Any], Awaitable[msgspec.Struct]], handlers: Callable[[], H]
) -> Callable[[Any], Awaitable[msgspec.Struct]]:
    async def bound(command: Any) -> msgspec.Struct:
        return await handle(handlers(), command)

    return bound


async def _serve_raw(
    nc: Client,
    name: str,
    routes: Mapping[str, Route[H]],
    handlers: Callable[[], H],
    reply_error: Callable[[Exception], msgspec.Struct],
    workers: int,
    stack: contextlib.AsyncExitStack,
) -> None:
    """Serve ``routes`` with raw nats-py subscriptions in the service's queue group."""
    tracer = trace.get_tracer(f"parley.{name}")
    limit = asyncio.Semaphore(workers)
    in_flight: set[asyncio.Task[None]] = set()

    def subscriber(verb: str, route: Route[H]) -> Callable[[Msg], Awaitable[None]]:
        subject = subjects.cmd(name, verb)
        decode = msgspec.json.Decoder(route[0]).decode
        handle = metered(name, verb, route[1])

        async def serve(msg: Msg) -> None:
            async with limit:
                with tracer.start_as_current_span(
                    f"{subject} process", context=extract(msg.headers), kind=SpanKind.CONSUMER
                ):
                    reply: msgspec.Struct
                    try:
                        command = decode(msg.data)
                        actor = carried_actor(msg.headers)
                        if msg.subject != subject:  # parley.ext.<namespace>.cmd.…
                            command, actor = from_outside(msg.subject, command)
                        with acting_as(actor):
                            reply = await handle(handlers(), command)
                    except Exception as exc:  # every failure becomes an error reply
                        reply = reply_error(exc)
                if msg.reply:
                    await msg.respond(_encode(reply))

        async def dispatch(msg: Msg) -> None:
            task = asyncio.create_task(serve(msg))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

        return dispatch

    subs = []
    for verb, route in routes.items():
        serve = subscriber(verb, route)
        for subject in (subjects.cmd(name, verb), subjects.ext_cmd("*", name, verb)):
            subs.append(await nc.subscribe(subject, queue=subjects.queue(name), cb=serve))

    async def stop_serving() -> None:
        for sub in subs:  # no new requests; those already received are still served
            with contextlib.suppress(nats.errors.Error):
                await sub.drain()  # type: ignore[no-untyped-call]
        if in_flight:  # let running commands finish (bounded)
            await asyncio.wait(set(in_flight), timeout=10.0)

    stack.push_async_callback(stop_serving)
