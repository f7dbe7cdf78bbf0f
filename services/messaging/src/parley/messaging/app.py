"""Wiring: the messaging service's FastStream app. No connections at import time.

One command, ``parley.cmd.messaging.send`` (queue group ``parley-messaging``): a
:class:`SendMessage` in, a :class:`MessageReply` out; every exception becomes an error reply
in one place. At start the process opens NATS and the event store, creates the inbox work
queue, follows the store (agents and their load), and once caught up re-publishes the
deliveries no runtime took (:func:`parley.messaging.delivery.redeliver`).

The send subscriber is raw nats-py, not a FastStream handler: it is the hot path of every
agent-to-agent round trip, and FastStream's per-message machinery (dependency injection,
middlewares, a thread hop) cost more than the send itself (see ``bench/messaging.py``).
Each request runs in its own task, at most ``send_workers`` at once; the span continues the
caller's ``traceparent``. FastStream still runs the process and its health subject.
"""

import asyncio
import logging

import msgspec
from faststream import FastStream
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from parley.contracts import subjects
from parley.contracts.acl import SERVICE, SendMessage
from parley.kit.service import Closers, connect_store, create_service
from parley.kit.telemetry import extract
from parley.messaging.delivery import Outbox, redeliver
from parley.messaging.directory import Directory
from parley.messaging.errors import reply_for_error
from parley.messaging.handlers import Messaging
from parley.messaging.settings import MessagingSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SendMessage).decode
_SWEEP_CATCH_UP_S = 60.0


def create_app(settings: MessagingSettings) -> FastStream:
    """The messaging service."""
    subject = subjects.cmd(SERVICE, "send")
    app = create_service(
        SERVICE, settings, lambda broker: None, description="FIPA-ACL messages: record, route."
    )
    closers = Closers(log)
    tasks: list[asyncio.Task[None]] = []
    in_flight: set[asyncio.Task[None]] = set()
    tracer = trace.get_tracer("parley.messaging")
    limit = asyncio.Semaphore(settings.send_workers)

    async def serve(messaging: Messaging, msg: Msg) -> None:
        async with limit:
            with tracer.start_as_current_span(
                f"{subject} process", context=extract(msg.headers), kind=SpanKind.CONSUMER
            ):
                try:
                    reply = await messaging.send(_decode(msg.data))
                except Exception as exc:  # every failure becomes an error reply
                    reply = reply_for_error(exc, log)
            if msg.reply:
                await msg.respond(_encode(reply))

    @app.on_startup
    async def open_connections() -> None:
        nc, store = await connect_store(settings, "parley-messaging", closers)
        outbox = Outbox(nc, nc.jetstream())
        await outbox.start()
        directory = Directory(store)
        await directory.start()
        closers.add(directory.stop)
        messaging = Messaging(store, directory, outbox, nc, settings.conversations_cached)

        async def dispatch(msg: Msg) -> None:
            task = asyncio.create_task(serve(messaging, msg))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

        sub = await nc.subscribe(subject, queue=subjects.queue(SERVICE), cb=dispatch)

        async def stop_serving() -> None:
            await sub.unsubscribe()
            if in_flight:  # let running sends finish (bounded)
                await asyncio.wait(set(in_flight), timeout=10.0)

        closers.add(stop_serving)

        async def sweep() -> None:
            if not await directory.wait_for(directory.target_position, _SWEEP_CATCH_UP_S):
                log.warning("the start-up redelivery sweep gave up: the store took too long")
                return
            try:
                await redeliver(directory, store, outbox, settings.redeliver_window)
            except Exception:
                log.exception("the start-up redelivery sweep failed")

        tasks.append(asyncio.create_task(sweep(), name="messaging-redeliver"))

    @app.after_shutdown
    async def close_connections() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await closers.close()

    return app
