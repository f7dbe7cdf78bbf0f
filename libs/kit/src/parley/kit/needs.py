"""What a process needs on NATS, kept there while it runs, and whether it is ready.

A service needs JetStream streams, KV buckets, object stores and durable consumers. The
memory-backed ones (``KV_parley-slots``, ``KV_parley-leases``, ``PARLEY_DELTAS``, …) vanish
when nats-server restarts, and any of them can be deleted by hand; only the processes that
need them would put them back. So a process declares each :class:`Need` (how to create it,
idempotently, and the stream or consumer that shows it is there) and its :class:`Keeper`
ensures them:

- at start (a failure there fails the start);
- whenever the NATS connection comes back (the server may have restarted with empty memory
  state), again and again until JetStream answers;
- every ``check_every`` seconds, when a look finds one missing (deleted by hand).

After a reconnect, once every need is in place again, it also restarts what a server restart
breaks without a word: the event store's feeds, whose ephemeral consumers the server forgot,
and what each need says to resume (a pull consumer's open pull requests).

:meth:`Keeper.readiness` is what the last look found: NATS connected, the event store
reachable, every need present, and not stopping. A service's health subject and the edge's
``/ready`` report it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from parley.eventstore import EventStore
from parley.eventstore.jetstream import JetStreamEventStore

__all__ = ["Keeper", "Need", "Readiness"]

log = logging.getLogger(__name__)

_RETRY_S = 0.25
"""Pause between rounds while something is missing (after a reconnect: JetStream may still be
recovering its streams)."""
_LOOK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Need:
    """One thing on NATS the process needs: a stream (a KV bucket and an object store are
    streams too), or a durable consumer of a stream."""

    name: str
    """How reports name it, e.g. ``KV parley-slots``."""
    stream: str
    """The JetStream stream that is it or holds it."""
    ensure: Callable[[], Awaitable[object]]
    """Creates it, or keeps it when it is there (idempotent)."""
    consumer: str | None = None
    """The durable consumer's name, when the need is a consumer."""
    resume: Callable[[], None] | None = None
    """What to do once it is in place again after a reconnect (the server may have
    restarted and forgotten what was asked of it)."""

    @classmethod
    def stream_of(cls, stream: str, ensure: Callable[[], Awaitable[object]]) -> "Need":
        """A stream."""
        return cls(f"stream {stream}", stream, ensure)

    @classmethod
    def key_value(cls, bucket: str, ensure: Callable[[], Awaitable[object]]) -> "Need":
        """A KV bucket (stream ``KV_<bucket>``)."""
        return cls(f"KV {bucket}", f"KV_{bucket}", ensure)

    @classmethod
    def object_store(cls, bucket: str, ensure: Callable[[], Awaitable[object]]) -> "Need":
        """An object store (stream ``OBJ_<bucket>``)."""
        return cls(f"object store {bucket}", f"OBJ_{bucket}", ensure)

    @classmethod
    def durable(
        cls,
        stream: str,
        consumer: str,
        ensure: Callable[[], Awaitable[object]],
        resume: Callable[[], None] | None = None,
    ) -> "Need":
        """A durable consumer of ``stream`` (``resume``: see :attr:`resume`)."""
        return cls(f"consumer {stream}/{consumer}", stream, ensure, consumer, resume)

    async def present(self, js: JetStreamContext) -> bool:
        """Whether it exists (False only when the server says it does not).

        Raises:
            nats.errors.Error: JetStream did not answer.
        """
        try:
            if self.consumer is None:
                await js.stream_info(self.stream)
            else:
                await js.consumer_info(self.stream, self.consumer, timeout=_LOOK_TIMEOUT_S)
        except NotFoundError:
            return False
        return True


class Readiness(msgspec.Struct, kw_only=True):
    """What works for this process right now, as its last look found it."""

    ready: bool
    """NATS connected, the event store reachable, every need present, not stopping."""
    nats_connected: bool
    """The process's NATS connection is up."""
    store_reachable: bool
    """The event store answered the last look."""
    missing: list[str]
    """Needs not there (or not confirmed since the connection came back)."""
    stopping: bool
    """The process is shutting down (SIGTERM): it takes no new work."""


class Keeper:
    """Ensures a process's :class:`Need`\\ s and keeps its :class:`Readiness` (see module doc)."""

    def __init__(self, *, check_every: float = 2.0) -> None:
        self.check_every = check_every
        self.nc: Client | None = None
        self.store: EventStore | None = None
        self._js: JetStreamContext | None = None
        self._needs: list[Need] = []
        self._missing: set[str] = set()
        self._store_ok = False
        self._stopping = False
        self._resume = False
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recovering_since: float | None = None

    def open(self, nc: Client, store: EventStore | None = None) -> None:
        """Keep the needs of the process connected by ``nc`` (whose ``reconnected_cb`` is
        :meth:`reconnected`), with ``store`` its event store."""
        self.nc, self.store = nc, store
        self._js = nc.jetstream(timeout=_LOOK_TIMEOUT_S)
        self._store_ok = True

    async def need(self, *needs: Need) -> None:
        """Ensure ``needs`` now and keep them from then on.

        Raises:
            nats.errors.Error: one could not be created.
        """
        for need in needs:
            await need.ensure()
            self._needs.append(need)

    def start(self) -> None:
        """Start looking (every ``check_every`` seconds, and at once after a reconnect)."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="needs-keeper")

    async def stop(self) -> None:
        """Stop looking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def stopping(self) -> None:
        """The process begins to shut down: from now on it is not ready."""
        self._stopping = True

    async def reconnected(self) -> None:
        """The NATS connection came back (nats-py's ``reconnected_cb``): the server may have
        lost everything kept in memory, so look again at once and restart the store's feeds."""
        self._missing.update(need.name for need in self._needs)  # unconfirmed until looked at
        self._resume = True
        self._recovering_since = time.monotonic()
        self._kick.set()

    def readiness(self) -> Readiness:
        """What the last look found."""
        connected = self.nc is not None and self.nc.is_connected
        missing = sorted(self._missing)
        store_ok = self._store_ok and connected
        return Readiness(
            ready=connected and store_ok and not missing and not self._stopping,
            nats_connected=connected,
            store_reachable=store_ok,
            missing=missing,
            stopping=self._stopping,
        )

    async def look(self) -> Readiness:
        """Look at every need now (creating the missing ones) and at the store."""
        if self.nc is None or not self.nc.is_connected:
            return self.readiness()
        missing = await self._ensure(self._needs)
        self._missing = set(missing)
        self._store_ok = await self._store_answers()
        if self._resume and not missing and self._store_ok:
            self._resume = False
            if isinstance(self.store, JetStreamEventStore):
                self.store.resume()
            for need in self._needs:
                if need.resume is not None:
                    need.resume()
            if self._recovering_since is not None:
                log.info(
                    "NATS is back and every need is in place (%.2fs after the reconnect)",
                    time.monotonic() - self._recovering_since,
                )
                self._recovering_since = None
        return self.readiness()

    async def _watch(self) -> None:
        while True:
            try:
                readiness = await self.look()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the keeper die
                log.exception("looking at the process's needs failed")
                readiness = self.readiness()
            pause = self.check_every if readiness.ready or self._stopping else _RETRY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), pause)
            self._kick.clear()

    async def _ensure(self, needs: Sequence[Need]) -> list[str]:
        """Create every need that is gone; the names of those still not there."""
        assert self._js is not None, "Keeper.open() first"
        missing: list[str] = []
        for need in needs:
            try:
                if await need.present(self._js):
                    continue
                await need.ensure()
                log.warning("%s was gone; created it again", need.name)
            except Exception as exc:  # JetStream not answering (yet): next round
                log.debug("%s cannot be ensured yet: %r", need.name, exc)
                missing.append(need.name)
        return missing

    async def _store_answers(self) -> bool:
        if self.store is None:
            return True
        try:
            await asyncio.wait_for(self.store.last_position(), _LOOK_TIMEOUT_S)
        except Exception:
            return False
        return True
