"""Wiring: the runtime's FastStream app, through :func:`parley.kit.app.service_app`.

Start-up opens, in order, the delta stream, the agents' view, the slots, the file store,
then the workers (executions, scheduler, inbox); shutdown closes them in reverse.
"""

from faststream import FastStream

from parley.contracts.runtime import SERVICE
from parley.kit.app import Connections, service_app
from parley.kit.deltas import ensure_delta_stream
from parley.runtime.adapters.budgets import BudgetKeeper
from parley.runtime.adapters.directory import AgentDirectory
from parley.runtime.adapters.files import FileStore
from parley.runtime.adapters.slots import Capacity
from parley.runtime.deps import Deps
from parley.runtime.errors import reply_for_error
from parley.runtime.handlers import ROUTES, Runtime
from parley.runtime.settings import RuntimeSettings

__all__ = ["create_app"]


def create_app(settings: RuntimeSettings) -> FastStream:
    """The runtime service."""

    async def start(connections: Connections) -> Runtime:
        js, store, stack = connections.js, connections.store, connections.stack
        await ensure_delta_stream(js)
        directory = AgentDirectory(store)
        await directory.start()
        stack.push_async_callback(directory.stop)
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
        stack.push_async_callback(capacity.stop)
        files = FileStore(js)
        await files.start()
        deps = Deps(
            settings=settings,
            nc=connections.nc,
            js=js,
            store=store,
            directory=directory,
            budgets=BudgetKeeper(store),
            capacity=capacity,
            files=files,
        )
        stack.push_async_callback(deps.close_providers)
        runtime = Runtime(deps)
        for worker in (runtime.worker, runtime.scheduler, runtime.inbox):
            await worker.start()
            stack.push_async_callback(worker.stop)
        return runtime

    return service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_for_error,
        description="Sessions, chat turns, executions, budgets.",
    )
