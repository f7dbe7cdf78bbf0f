"""Wiring: the runtime's FastStream app, through :func:`parley.kit.app.service_app`.

Start-up opens, in order, the delta stream, the agents' view, the memories' index, the
slots, the file store,
then the workers (executions, scheduler, inbox); shutdown closes them in reverse. The model
SDKs of the providers the process is configured for (an endpoint or a key set) are imported
from a thread once it serves (:func:`parley.llm.factory.preload`); the others on first use.
What they need on NATS (the delta stream, the slot and lease buckets, the file store, the work and
inbox streams and their consumers) is kept there by the kit: made again after a server
restart that lost it.

The process holds one :class:`~parley.identity.scrub.Scrubber` of the secrets in its
environment (provider keys, ``*_KEY_FILE`` and other secret files): providers' text and
errors, tool results and run outcomes pass it before they are recorded or returned, and
every log line passes it before it is written.
"""

import asyncio
import logging

from faststream import FastStream

from parley.contracts import subjects
from parley.contracts.runtime import SERVICE
from parley.identity.scrub import Scrubber
from parley.identity.scrub import secrets_from_environment
from parley.kit.app import Connections
from parley.kit.app import service_app
from parley.kit.deltas import DELTA_STREAM
from parley.kit.deltas import ensure_delta_stream
from parley.kit.logs import scrub_logs
from parley.kit.needs import Need
from parley.llm.factory import SDK_ADAPTERS
from parley.llm.factory import preload
from parley.llm.settings import configured
from parley.memory.book import MemoryProjection
from parley.runtime.adapters.budgets import BudgetKeeper
from parley.runtime.adapters.directory import AgentDirectory
from parley.runtime.adapters.files import FileStore
from parley.runtime.adapters.slots import Capacity
from parley.runtime.adapters.spend import SpendKeeper
from parley.runtime.deps import Deps
from parley.runtime.errors import reply_for_error
from parley.runtime.handlers import ROUTES
from parley.runtime.handlers import Runtime
from parley.runtime.settings import RuntimeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: RuntimeSettings) -> FastStream:
    """The runtime service."""
    secrets = frozenset(secrets_from_environment())  # one Scrubber of them: Deps.scrubber

    async def start(connections: Connections) -> Runtime:
        js, store, stack = connections.js, connections.store, connections.stack
        keeper = connections.keeper
        await keeper.need(
            Need.stream_of(
                DELTA_STREAM, lambda: ensure_delta_stream(js, replicas=settings.nats_replicas)
            )
        )
        directory = AgentDirectory(store)
        await directory.start()
        stack.push_async_callback(directory.stop)
        memories = MemoryProjection(store)
        await memories.start()
        stack.push_async_callback(memories.stop)
        capacity = Capacity(
            connections.nc,
            store,
            worker=settings.worker,
            queue_limit=settings.queue_limit,
            queue_timeout=settings.queue_timeout,
            lease_ttl=settings.lease_ttl,
            idle_timeout=settings.idle_timeout,
            namespace_quota=settings.quota_max_instances,
            replicas=settings.nats_replicas,
        )
        await capacity.start()
        stack.push_async_callback(capacity.stop)
        files = FileStore(js, replicas=settings.nats_replicas)
        await files.start()
        await keeper.need(
            Need.key_value(subjects.SLOTS_BUCKET, capacity.ensure),
            Need.object_store(subjects.FILES_BUCKET, files.start),
        )
        deps = Deps(
            settings=settings,
            nc=connections.nc,
            js=js,
            store=store,
            directory=directory,
            budgets=BudgetKeeper(store),
            spend=SpendKeeper(store, daily_limit_usd=settings.quota_daily_spend_usd),
            capacity=capacity,
            files=files,
            secrets=secrets,
            memories=memories,
        )
        stack.push_async_callback(deps.close_providers)
        runtime = Runtime(deps)
        for worker in (runtime.worker, runtime.scheduler, runtime.inbox):
            await worker.start()
            connections.stop_first(worker.stop)
        await keeper.need(
            *runtime.worker.needs,
            *runtime.inbox.needs,
            Need.key_value(subjects.LEASES_BUCKET, runtime.scheduler.ensure),
        )
        _preload_sdks(settings)
        return runtime

    app = service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_for_error,
        description="Sessions, chat turns, executions, budgets.",
        raw=True,  # every chat turn starts here: FastStream's per-message machinery costs more
    )
    # known secrets only (no patterns): a JSON line stays JSON
    scrub_logs(Scrubber(secrets, patterns=()).scrub)
    return app


_preloading: set["asyncio.Task[None]"] = set()


def _preload_sdks(settings: RuntimeSettings) -> None:
    """Import, from a thread, the SDKs of the providers this process has an endpoint or a key
    for: the first model call then finds them loaded."""
    names = [
        name
        for name in SDK_ADAPTERS
        if configured(name, settings.endpoint(name).provider_settings())
    ]
    if names:
        task = asyncio.create_task(asyncio.to_thread(preload, names), name="preload-sdks")
        _preloading.add(task)
        task.add_done_callback(_preloaded)


def _preloaded(task: "asyncio.Task[None]") -> None:
    _preloading.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("could not load a model SDK ahead: %r", error)
