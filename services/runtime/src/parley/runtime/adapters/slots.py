"""Instances: an agent's concurrency slots across runtime processes, and scale to zero.

A slot is a key ``<agent id>.<n>`` (n < the agent's ``instances``) in the JetStream KV
bucket ``parley-slots``. Its value is the holder's name, or empty when free. Taking a slot is
a compare-and-set on the revision last seen free (one round trip; a create when the key is
gone), releasing it writes the empty value at the revision it holds and remembers the next,
so any number of runtimes share the limit. A slot found held is asked of its holder
(:mod:`parley.runtime.adapters.holders`): a dead holder's slot is taken over at once; entries
also live ``lease_ttl`` seconds unless renewed, so a killed runtime's slots come back by
themselves even when nobody asks. A request that finds every slot busy waits in a
bounded queue, then gets ``RATE_LIMITED`` with the reason.

A slot an agent's turn is done with stays with its process for :data:`SPARE_S` (a *spare*):
the agent's next request there takes it without a round trip to the bucket (a busy agent
takes and frees a slot per turn; that was two writes to the bucket each). Another runtime
that asks for a spare slot gets it at once: its holder gives it up and answers that it does
not hold it. A spare nobody took is freed in the bucket when its time is up, and every spare
is freed when the process stops.

With a namespace quota (``PARLEY_QUOTA_MAX_INSTANCES``), a request that has its agent's slot
also takes one of its namespace's slots ``ns.<namespace>.<n>`` (n < the quota) the same way,
and holds it with the agent's (a request queued for its agent holds none); when every one is
held the request is refused at once with ``QUOTA_EXCEEDED`` and frees the agent's slot (not
queued: the namespace has reached what it is allowed, waiting would not change that).

An agent is *warm* in a process from its first request (``instance.started``, a cold start)
until it has been idle ``idle_timeout`` seconds (``instance.stopped``: scaled to zero).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from collections.abc import Callable

import msgspec
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.api import StorageType
from nats.js.errors import KeyDeletedError
from nats.js.errors import KeyNotFoundError
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from parley.contracts import subjects
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import InstanceChanged
from parley.contracts.runtime import instance_stream
from parley.eventstore import ANY_VERSION
from parley.eventstore import EventStore
from parley.runtime.adapters.holders import Holders
from parley.runtime.errors import RuntimeFault

__all__ = ["SPARE_S", "Capacity"]

log = logging.getLogger(__name__)

SPARE_S = 0.25
"""How long a slot an agent's turn is done with stays with its process for the agent's next
request before it is freed in the bucket (another runtime that asks for it gets it at once)."""


class Capacity:
    """Slot leases (shared by every runtime) and this process's warm instances."""

    def __init__(
        self,
        nc: Client,
        store: EventStore,
        *,
        worker: str,
        queue_limit: int,
        queue_timeout: float,
        lease_ttl: float,
        idle_timeout: float,
        namespace_quota: int = 0,
        replicas: int = 1,
    ) -> None:
        self.js, self.store, self.worker = nc.jetstream(), store, worker
        self.replicas = replicas
        self.namespace_quota = namespace_quota
        """Slots one namespace may hold at once across runtimes (0: no limit)."""
        self.queue_limit, self.queue_timeout = queue_limit, queue_timeout
        self.lease_ttl, self.idle_timeout = lease_ttl, idle_timeout
        self._kv: KeyValue | None = None
        self._queued: dict[str, int] = {}
        self._warm: dict[str, float] = {}
        self._namespaces: dict[str, str] = {}
        self._seen: dict[str, bool] = {}
        self._busy: dict[str, int] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._free: dict[str, int] = {}
        """Revision of each slot key when this process last saw it free."""
        self._mine: set[str] = set()
        """Slot keys this process holds or is claiming now: taking a slot passes over them
        without asking (a concurrent take would only find them held)."""
        self._released: dict[str, asyncio.Event] = {}
        """Per agent with queued requests: set when this process frees one of its slots."""
        self._held: dict[str, int] = {}
        """The bucket revision of each slot this process holds."""
        self._renewing: dict[str, asyncio.Task[None]] = {}
        """The lease renewal of each slot this process holds, in use or spare."""
        self._spare: dict[str, dict[str, asyncio.TimerHandle]] = {}
        """Per agent: the slots this process holds that no turn uses, each with the timer
        that frees it (newest last)."""
        self._letting_go: set[asyncio.Task[None]] = set()
        self.holders = Holders(nc, worker, self._holds)

    async def start(self) -> None:
        """Open the slot bucket and start the idle reaper."""
        await self.ensure()
        await self.holders.start()
        self._reaper = asyncio.create_task(self._reap(), name="idle-reaper")

    async def ensure(self) -> None:
        """Create the slot bucket (or keep it); spare slots are not trusted to be in it (a
        bucket made again after a restart of its memory-backed server holds none)."""
        for spare in list(self._spare.values()):
            for key in list(spare):
                self._forget(key)
        self._kv = await self.js.create_key_value(
            KeyValueConfig(
                bucket=subjects.SLOTS_BUCKET,
                ttl=self.lease_ttl,
                storage=StorageType.MEMORY,
                replicas=self.replicas,
            )
        )

    async def stop(self) -> None:
        """Stop the reaper; warm instances stop with the process."""
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for spare in list(self._spare.values()):
            for key in list(spare):
                await self._let_go(self._unspare(key))
        await asyncio.gather(*self._letting_go, return_exceptions=True)
        for agent_id in list(self._warm):
            await self._scale_down(agent_id, "runtime stopped")
        await self.holders.stop()

    def load(self, agent_id: str) -> int:
        """Turns of the agent running in this process."""
        return self._busy.get(agent_id, 0)

    @contextlib.asynccontextmanager
    async def slot(
        self,
        agent_id: str,
        instances: int,
        namespace: str,
        prepare: Callable[[], object] | None = None,
    ) -> AsyncIterator[int]:
        """Hold one of the agent's slots for the duration of the block.

        ``prepare`` readies what the agent needs (its provider's client) on a cold start;
        its duration is the cold start's.

        Raises:
            RuntimeFault: ``RATE_LIMITED`` when the agent has no instances, or every slot stayed
                busy for the queue timeout, or the queue is full.
        """
        if instances <= 0:
            raise RuntimeFault(
                ErrorCode.RATE_LIMITED,
                "the agent has 0 instances; set instances to 1 or more to serve requests",
            )
        async with contextlib.AsyncExitStack() as held:
            index, revision = await self._take(agent_id, instances)
            key = f"{agent_id}.{index}"
            await held.enter_async_context(self._lease((key, revision), spare=True))
            # The namespace's slot after the agent's: a request queued for its agent holds
            # none of its namespace's quota while it waits.
            if self.namespace_quota > 0:
                taken = await self._take_namespace(namespace)
                await held.enter_async_context(self._lease(taken, spare=False))
            self._busy[agent_id] = self._busy.get(agent_id, 0) + 1
            try:
                await self._warm_up(agent_id, namespace, prepare)
                yield index
            finally:
                self._busy[agent_id] -= 1
                self._warm[agent_id] = time.monotonic()

    @contextlib.asynccontextmanager
    async def _lease(self, taken: tuple[str, int], *, spare: bool) -> AsyncIterator[None]:
        """Hold a taken slot (renewed) while the block runs; then keep it as a ``spare`` for
        :data:`SPARE_S`, or free it."""
        key, revision = taken
        if key not in self._renewing:  # taken from the bucket, not a spare of this process
            self._held[key] = revision
            self._mine.add(key)
            self._renewing[key] = asyncio.create_task(self._renew(key), name=f"renew-{key}")
        try:
            yield
        finally:
            if spare and key in self._renewing:
                agent_id = key.rpartition(".")[0]
                timer = asyncio.get_running_loop().call_later(SPARE_S, self._expire, key)
                self._spare.setdefault(agent_id, {})[key] = timer
            else:
                await self._let_go(key)
            if (released := self._released.get(key.rpartition(".")[0])) is not None:
                released.set()  # a request queued here takes it without waiting its pause

    def _reuse(self, agent_id: str, instances: int) -> tuple[int, int] | None:
        """A spare slot of the agent's (within its ``instances``), taken for a turn."""
        spare = self._spare.get(agent_id)
        while spare:
            key = self._unspare(next(reversed(spare)))
            index = int(key.rpartition(".")[2])
            if index < instances:
                return index, self._held[key]
            self._spawn_let_go(key)  # its instances were lowered meanwhile
        return None

    def _unspare(self, key: str) -> str:
        """Take ``key`` out of the spares (it stays held)."""
        agent_id = key.rpartition(".")[0]
        spare = self._spare.get(agent_id, {})
        timer = spare.pop(key, None)
        if timer is not None:
            timer.cancel()
        if not spare:
            self._spare.pop(agent_id, None)
        return key

    def _is_spare(self, key: str) -> bool:
        return key in self._spare.get(key.rpartition(".")[0], {})

    def _expire(self, key: str) -> None:
        if self._is_spare(key):
            self._spawn_let_go(self._unspare(key))

    def _spawn_let_go(self, key: str) -> None:
        task = asyncio.create_task(self._let_go(key), name=f"free-{key}")
        self._letting_go.add(task)
        task.add_done_callback(self._letting_go.discard)

    async def _let_go(self, key: str) -> None:
        """Stop renewing ``key`` and free it in the bucket."""
        renew = self._renewing.pop(key, None)
        if renew is not None:
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
        revision = self._held.pop(key, None)
        if revision is not None:
            await self._release(key, revision)
        self._mine.discard(key)

    def _forget(self, key: str) -> None:
        """Give up spare ``key`` without writing to the bucket: another runtime takes it at
        the revision it read, or it was lost (a bucket made again)."""
        self._unspare(key)
        renew = self._renewing.pop(key, None)
        if renew is not None:
            renew.cancel()
        self._held.pop(key, None)
        self._mine.discard(key)

    def _holds(self, key: str) -> bool:
        """This process's answer to another runtime asking for ``key``: a spare is given up."""
        if self._is_spare(key):
            self._forget(key)
            return False
        return key in self._mine

    async def _take_namespace(self, namespace: str) -> tuple[str, int]:
        """One of the namespace's slots, or ``QUOTA_EXCEEDED`` at once when all are held."""
        quota = self.namespace_quota
        for index in range(quota):
            key = f"ns.{namespace}.{index}"
            if key not in self._mine and (revision := await self._claim(key)) is not None:
                return key, revision
        raise RuntimeFault(
            ErrorCode.QUOTA_EXCEEDED,
            f"namespace {namespace!r} already runs {quota} instance(s), its quota"
            " (PARLEY_QUOTA_MAX_INSTANCES); retry when one ends",
            {"quota": "max_instances", "namespace": namespace, "limit": quota},
        )

    async def _take(self, agent_id: str, instances: int) -> tuple[int, int]:
        assert self._kv is not None
        index = await self._try(agent_id, instances)
        if index is not None:
            return index
        queued = self._queued.get(agent_id, 0)
        if queued >= self.queue_limit:
            raise RuntimeFault(
                ErrorCode.RATE_LIMITED,
                f"all {instances} instance(s) of the agent are busy and {queued} requests are"
                " already queued; retry later or raise its instances",
            )
        self._queued[agent_id] = queued + 1
        released = self._released.setdefault(agent_id, asyncio.Event())
        try:
            deadline = time.monotonic() + self.queue_timeout
            pause = 0.005
            while time.monotonic() < deadline:
                released.clear()
                # Woken at once by a slot this process frees; another runtime's is polled.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), pause)
                pause = min(pause * 2, 0.1)
                index = await self._try(agent_id, instances)
                if index is not None:
                    return index
        finally:
            self._queued[agent_id] -= 1
            if not self._queued[agent_id]:
                self._released.pop(agent_id, None)
        raise RuntimeFault(
            ErrorCode.RATE_LIMITED,
            f"all {instances} instance(s) of the agent stayed busy for"
            f" {self.queue_timeout:g}s; retry later or raise its instances",
        )

    async def _try(self, agent_id: str, instances: int) -> tuple[int, int] | None:
        if (spare := self._reuse(agent_id, instances)) is not None:
            return spare
        for index in range(instances):
            key = f"{agent_id}.{index}"
            if key not in self._mine and (revision := await self._claim(key)) is not None:
                return index, revision
        return None

    async def _claim(self, key: str) -> int | None:
        """Take ``key`` (not held by this process) if it is free, or its holder is gone: the
        revision taken, or None when it is held."""
        self._mine.add(key)  # claimed here meanwhile: a concurrent take passes it over
        revision = None
        try:
            revision = await self._claim_once(key)
        finally:
            if revision is None:
                self._mine.discard(key)
        return revision

    async def _claim_once(self, key: str) -> int | None:
        assert self._kv is not None
        mine = self.worker.encode()
        known = self._free.pop(key, None)
        if known is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                return await self._kv.update(key, mine, last=known)
        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            try:
                return await self._kv.create(key, mine)
            except KeyWrongLastSequenceError:
                return None
        if entry.value and await self.holders.holds(entry.value, key):
            return None  # held by a live runtime
        try:
            return await self._kv.update(key, mine, last=entry.revision)
        except KeyWrongLastSequenceError:
            return None

    async def _release(self, key: str, revision: int) -> None:
        """Free ``key`` at the revision this process holds it at: never one taken over."""
        assert self._kv is not None
        try:
            self._free[key] = await self._kv.update(key, b"", last=revision)
        except KeyWrongLastSequenceError:
            log.info("slot %s was taken over meanwhile; it is not freed", key)
        except Exception:
            log.warning("could not release slot %s; it expires by itself", key)

    async def _renew(self, key: str) -> None:
        assert self._kv is not None
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                self._held[key] = await self._kv.update(
                    key, self.worker.encode(), last=self._held[key]
                )
            except KeyWrongLastSequenceError:
                # Taken over meanwhile (its lease ran out): not this process's any more, so
                # neither kept as a spare nor renewed.
                if self._is_spare(key):
                    self._forget(key)
                else:
                    self._renewing.pop(key, None)
                return
            except Exception:
                log.debug("could not renew slot %s", key, exc_info=True)

    async def _warm_up(
        self, agent_id: str, namespace: str, prepare: Callable[[], object] | None
    ) -> None:
        if agent_id in self._warm:
            return
        started = time.monotonic()
        if prepare is not None:
            prepare()
        self._warm[agent_id] = started
        self._namespaces[agent_id] = namespace
        await self._record(
            agent_id,
            namespace,
            "instance.started",
            InstanceChanged(
                agent_id=agent_id,
                worker=self.worker,
                reason="first request"
                if self._seen.get(agent_id) is None
                else "request after idle",
                cold_start_ms=round((time.monotonic() - started) * 1000, 3),
            ),
        )
        self._seen[agent_id] = True

    async def _scale_down(self, agent_id: str, reason: str) -> None:
        self._warm.pop(agent_id, None)
        await self._record(
            agent_id,
            self._namespaces.get(agent_id, "default"),
            "instance.stopped",
            InstanceChanged(agent_id=agent_id, worker=self.worker, reason=reason),
        )

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(self.idle_timeout / 4, 5.0)))
            now = time.monotonic()
            for agent_id, last in list(self._warm.items()):
                if self._busy.get(agent_id, 0) == 0 and now - last >= self.idle_timeout:
                    await self._scale_down(agent_id, f"idle for {self.idle_timeout:g}s")

    async def _record(
        self, agent_id: str, namespace: str, kind: str, payload: InstanceChanged
    ) -> None:
        event = NewEvent(
            type=kind,
            subject=agent_id,
            data=msgspec.to_builtins(payload),
            namespace=namespace,
            source="/parley/runtime",
        )
        try:
            await self.store.append(instance_stream(agent_id), [event], ANY_VERSION)
        except Exception:
            log.exception("could not record %s for agent %s", kind, agent_id)
