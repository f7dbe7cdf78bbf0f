"""Wiring: the messaging service, through :func:`parley.kit.app.service_app`.

One command, ``parley.cmd.messaging.send`` (queue group ``parley-messaging``): a
:class:`SendMessage` in, a :class:`MessageReply` out. It is served with raw nats-py
(``raw=True``), not FastStream handlers: it is the hot path of every agent-to-agent round
trip, and FastStream's per-message machinery cost more than the send itself (see
``bench/messaging.py``). At start the process creates the inbox work queue, follows the store
(agents and their load), and once caught up re-publishes the deliveries no runtime took
(:func:`parley.messaging.workers.delivery.redeliver`).
"""

import asyncio
import contextlib
import logging

from faststream import FastStream

from parley.contracts import subjects
from parley.contracts.acl import SERVICE
from parley.contracts.acl import SendMessage
from parley.kit.app import Connections
from parley.kit.app import Route
from parley.kit.app import service_app
from parley.kit.workqueue import work_stream_need
from parley.messaging.directory import Directory
from parley.messaging.dispatch import Dispatch
from parley.messaging.handlers import Messaging
from parley.messaging.handlers import reply_for_error
from parley.messaging.settings import MessagingSettings
from parley.messaging.waiting import Replies
from parley.messaging.workers.delivery import Outbox
from parley.messaging.workers.delivery import redeliver

__all__ = ["ROUTES", "create_app"]

log = logging.getLogger(__name__)
_SWEEP_CATCH_UP_S = 60.0

ROUTES: dict[str, Route[Messaging]] = {"send": (SendMessage, Messaging.send)}
"""Verb → (command type, handler)."""


def create_app(settings: MessagingSettings) -> FastStream:
    """The messaging service."""

    async def start(connections: Connections) -> Messaging:
        store, stack = connections.store, connections.stack
        outbox = Outbox(connections.nc, connections.js, replicas=settings.nats_replicas)
        await outbox.start()
        await connections.keeper.need(
            work_stream_need(
                connections.js,
                subjects.INBOX_STREAM,
                [subjects.INBOX_ALL],
                replicas=settings.nats_replicas,
            )
        )
        directory = Directory(store)
        await directory.start()
        stack.push_async_callback(directory.stop)
        sweep = asyncio.create_task(
            _sweep(directory, outbox, settings.redeliver_window), name="messaging-redeliver"
        )
        stack.push_async_callback(_cancel, sweep)
        dispatch = Dispatch(store, directory, outbox)
        replies = Replies()
        await replies.start(connections.nc)
        stack.push_async_callback(replies.stop)
        return Messaging(store, directory, dispatch, replies, settings.conversations_cached)

    return service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_for_error,
        description="FIPA-ACL messages: record, route.",
        raw=True,
        max_workers=settings.send_workers,
    )


async def _sweep(directory: Directory, outbox: Outbox, window: float) -> None:
    """Once the directory caught up, re-publish the deliveries no runtime took."""
    if not await directory.wait_for(directory.target_position, _SWEEP_CATCH_UP_S):
        log.warning("the start-up redelivery sweep gave up: the store took too long")
        return
    try:
        await redeliver(directory, directory.store, outbox, window)
    except Exception:
        log.exception("the start-up redelivery sweep failed")


async def _cancel(task: "asyncio.Task[None]") -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
