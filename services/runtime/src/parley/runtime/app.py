"""Wiring: the runtime's FastStream app. No connections at import time.

Commands arrive on ``parley.cmd.runtime.<verb>`` (queue group ``parley-runtime``); each
handler gets a decoded command and returns a :class:`RuntimeReply`; every exception becomes
an error reply in one place.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faststream import FastStream
from faststream.nats import NatsBroker

from parley.contracts.runtime import (
    SERVICE,
    CancelExecution,
    CancelTurn,
    Chat,
    CreateSession,
    DeleteFile,
    DeleteSession,
    DeleteSessions,
    ExecutionInput,
    RuntimeReply,
    SetSessionTools,
    TriggerExecution,
    UpdateSession,
    UploadFile,
)
from parley.kit.deltas import ensure_delta_stream
from parley.kit.service import Closers, add_command_routes, connect_store, create_service
from parley.runtime.budgets import BudgetKeeper
from parley.runtime.capacity import Capacity
from parley.runtime.chat import Turns
from parley.runtime.context import Deps
from parley.runtime.directory import AgentDirectory
from parley.runtime.errors import error_body
from parley.runtime.executions import Executions
from parley.runtime.files import FileStore
from parley.runtime.inbox import Inbox
from parley.runtime.scheduler import Scheduler
from parley.runtime.sessions import Sessions
from parley.runtime.settings import RuntimeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class Runtime:
    """The process's handlers, built once its connections are open."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.turns = Turns(deps)
        self.sessions = Sessions(deps, self.turns.cache)
        self.executions = Executions(deps)
        self.scheduler = Scheduler(deps, self.executions)
        self.inbox = Inbox(deps, self.turns)


Handler = Callable[[Runtime, Any], Awaitable[RuntimeReply]]

ROUTES: dict[str, tuple[type[msgspec.Struct], Handler]] = {
    "create_session": (CreateSession, lambda r, c: r.sessions.create(c)),
    "update_session": (UpdateSession, lambda r, c: r.sessions.update(c)),
    "set_session_tools": (SetSessionTools, lambda r, c: r.sessions.set_tools(c)),
    "delete_session": (DeleteSession, lambda r, c: r.sessions.delete(c)),
    "delete_sessions": (DeleteSessions, lambda r, c: r.sessions.delete_all(c)),
    "upload_file": (UploadFile, lambda r, c: r.sessions.upload(c)),
    "delete_file": (DeleteFile, lambda r, c: r.sessions.delete_file(c)),
    "chat": (Chat, lambda r, c: r.turns.chat(c)),
    "cancel_turn": (CancelTurn, lambda r, c: r.turns.cancel(c)),
    "trigger_execution": (TriggerExecution, lambda r, c: r.executions.trigger(c)),
    "execution_input": (ExecutionInput, lambda r, c: r.executions.answer(c)),
    "cancel_execution": (CancelExecution, lambda r, c: r.executions.cancel(c)),
}
"""Verb → (command type, handler)."""


def create_app(settings: RuntimeSettings) -> FastStream:
    """The runtime service."""
    holder: dict[str, Runtime] = {}

    def register(broker: NatsBroker) -> None:
        add_command_routes(
            broker,
            SERVICE,
            ROUTES,
            lambda: holder["runtime"],
            on_error=lambda exc: RuntimeReply(ok=False, error=error_body(exc)),
            max_workers=settings.max_in_flight,
        )

    app = create_service(
        SERVICE, settings, register, description="Sessions, chat turns, executions, budgets."
    )
    closers = Closers(log)

    @app.on_startup
    async def open_connections() -> None:
        nc, store = await connect_store(settings, f"parley-runtime-{settings.worker}", closers)
        js = nc.jetstream()
        await ensure_delta_stream(js)
        directory = AgentDirectory(store)
        await directory.start()
        closers.add(directory.stop)
        capacity = Capacity(
            js,
            store,
            worker=settings.worker,
            queue_limit=settings.queue_limit,
            queue_timeout=settings.queue_timeout,
            lease_ttl=settings.lease_ttl,
            idle_timeout=settings.idle_timeout,
        )
        await capacity.start()
        closers.add(capacity.stop)
        files = FileStore(js)
        await files.start()
        deps = Deps(
            settings=settings,
            nc=nc,
            js=js,
            store=store,
            directory=directory,
            budgets=BudgetKeeper(store),
            capacity=capacity,
            files=files,
        )
        runtime = Runtime(deps)
        holder["runtime"] = runtime
        await runtime.executions.start()
        closers.add(runtime.executions.stop)
        await runtime.scheduler.start()
        closers.add(runtime.scheduler.stop)
        await runtime.inbox.start()
        closers.add(runtime.inbox.stop)

    @app.after_shutdown
    async def close_connections() -> None:
        runtime = holder.pop("runtime", None)
        if runtime is not None:
            for provider in runtime.deps.providers.values():
                await provider.aclose()
        await closers.close()

    return app
