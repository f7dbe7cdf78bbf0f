"""Wiring: the tasks service's app, through :func:`parley.kit.app.service_app`.

Commands arrive on ``parley.cmd.tasks.<verb>`` (:data:`~parley.tasks.handlers.ROUTES`). On
start-up the directory and the watch catch up with the store (the watch re-arms the deadlines
of open rounds and runs), the messages a dead process failed to send are sent, and the inbox
starts pulling. No connections at import time.
"""

import logging
from typing import Any

from faststream import FastStream

from parley.contracts.tasks import SERVICE
from parley.eventstore.repository import Repository
from parley.kit.app import Connections
from parley.kit.app import service_app
from parley.tasks.adapters.mailer import Mailer
from parley.tasks.conversations import Conversations
from parley.tasks.directory import Directory
from parley.tasks.domain import RUNS
from parley.tasks.domain import TASKS
from parley.tasks.domain import Kind
from parley.tasks.domain import Streams
from parley.tasks.handlers import ROUTES
from parley.tasks.handlers import Tasks
from parley.tasks.handlers import reply_error
from parley.tasks.settings import TasksSettings
from parley.tasks.workers.inbox import Inbox
from parley.tasks.workers.watch import Watch

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_CATCH_UP_S = 60.0
"""How long start-up waits for the watch and the directory to reach the store's end."""


def create_app(settings: TasksSettings) -> FastStream:
    """The tasks service: Contract Net rounds and cluster group runs."""

    async def start(connections: Connections) -> Tasks:
        store, stack = connections.store, connections.stack
        directory = Directory(store)
        await directory.start()
        stack.push_async_callback(directory.stop)
        mailer = Mailer(connections.nc, settings.tasks_send_timeout)
        streams = Streams()  # filled by the watch: where tasks stored before namespaces are
        tasks = Conversations(TASKS, Repository(store, TASKS.evolve), mailer, streams)
        runs = Conversations(RUNS, Repository(store, RUNS.evolve), mailer, streams)
        conversations: dict[Kind, Conversations[Any, Any]] = {"task": tasks, "run": runs}

        async def on_due(kind: Kind, key: str, namespace: str) -> None:
            await conversations[kind].on_due(key, namespace)

        repositories = {k: c.repository for k, c in conversations.items()}
        watch = Watch(store, on_due, repositories, streams)
        await watch.start()
        stack.push_async_callback(watch.stop)
        if not await watch.wait_for(watch.target_position, _CATCH_UP_S):
            log.warning("the watch did not catch up in %ss; recovering what it has", _CATCH_UP_S)
        await directory.wait_for(directory.target_position, _CATCH_UP_S)
        for kind, conversation in conversations.items():
            await conversation.recover(watch.open(kind))
        inbox = Inbox(
            connections.js,
            {kind: c.on_messages for kind, c in conversations.items()},
            ack_wait=settings.tasks_ack_wait,
            batch=settings.tasks_inbox_batch,
            replicas=settings.nats_replicas,
        )
        await inbox.start()
        connections.stop_first(inbox.stop)
        await connections.keeper.need(*inbox.needs)
        return Tasks(tasks, runs, directory, watch, settings)

    return service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_error,
        description="Contract Net rounds and cluster group runs.",
        max_workers=settings.max_in_flight,
    )
