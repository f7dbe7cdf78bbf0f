"""Wiring: the tasks service's FastStream app. No connections at import time.

Commands arrive on ``parley.cmd.tasks.<verb>`` (queue group ``parley-tasks``); each handler
gets a decoded command and returns a :class:`TaskReply`; every exception becomes an error
reply in one place. On start-up the directory and the watch catch up with the store (the
watch re-arms the deadlines of open rounds and runs), the messages a dead process failed to
send are sent, and the inbox starts pulling.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faststream import FastStream
from faststream.nats import NatsBroker

from parley.contracts.tasks import (
    SERVICE,
    CancelTask,
    CreateTask,
    DistributeTask,
    StartRun,
    TaskReply,
)
from parley.kit.service import Closers, add_command_routes, connect_store, create_service
from parley.tasks.contractnet import ContractNet
from parley.tasks.directory import Directory
from parley.tasks.errors import error_body
from parley.tasks.inbox import Inbox
from parley.tasks.runs import GroupRuns
from parley.tasks.settings import TasksSettings
from parley.tasks.shell import Mailer
from parley.tasks.watch import Kind, Watch

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_CATCH_UP_S = 60.0


class Tasks:
    """The process's handlers, built once its connections are open."""

    def __init__(self, contract_net: ContractNet, runs: GroupRuns) -> None:
        self.contract_net, self.runs = contract_net, runs


Handler = Callable[[Tasks, Any], Awaitable[TaskReply]]

ROUTES: dict[str, tuple[type[msgspec.Struct], Handler]] = {
    "create_task": (CreateTask, lambda t, c: t.contract_net.create(c)),
    "distribute_task": (DistributeTask, lambda t, c: t.contract_net.distribute(c)),
    "cancel_task": (CancelTask, lambda t, c: t.contract_net.cancel(c)),
    "start_run": (StartRun, lambda t, c: t.runs.start(c)),
}
"""Verb → (command type, handler)."""


def create_app(settings: TasksSettings) -> FastStream:
    """The tasks service."""
    holder: dict[str, Tasks] = {}

    def register(broker: NatsBroker) -> None:
        add_command_routes(
            broker,
            SERVICE,
            ROUTES,
            lambda: holder["tasks"],
            on_error=lambda exc: TaskReply(ok=False, error=error_body(exc)),
            max_workers=settings.max_in_flight,
        )

    app = create_service(
        SERVICE, settings, register, description="Contract Net rounds and cluster group runs."
    )
    closers = Closers(log)

    @app.on_startup
    async def open_connections() -> None:
        nc, store = await connect_store(settings, "parley-tasks", closers)
        directory = Directory(store)
        await directory.start()
        closers.add(directory.stop)

        async def on_due(kind: Kind, key: str) -> None:
            tasks = holder.get("tasks")
            if tasks is None:
                return  # still starting: the recovery pass below handles it
            if kind == "task":
                await tasks.contract_net.on_due(key)
            else:
                await tasks.runs.on_due(key)

        watch = Watch(store, on_due)
        mailer = Mailer(nc, settings.tasks_send_timeout)
        tasks = Tasks(
            ContractNet(store, directory, watch, mailer, settings),
            GroupRuns(store, directory, watch, mailer),
        )
        holder["tasks"] = tasks
        await watch.start()
        closers.add(watch.stop)
        if not await watch.wait_for(watch.target_position, _CATCH_UP_S):
            log.warning("the watch did not catch up in %ss; recovering what it has", _CATCH_UP_S)
        await directory.wait_for(directory.target_position, _CATCH_UP_S)
        await tasks.contract_net.recover()
        await tasks.runs.recover()
        inbox = Inbox(
            nc.jetstream(),
            tasks=tasks.contract_net.on_messages,
            runs=tasks.runs.on_messages,
            ack_wait=settings.tasks_ack_wait,
            batch=settings.tasks_inbox_batch,
        )
        await inbox.start()
        closers.add(inbox.stop)

    @app.after_shutdown
    async def close_connections() -> None:
        holder.pop("tasks", None)
        await closers.close()

    return app
