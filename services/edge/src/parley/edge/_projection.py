"""The machinery every edge projection shares: a feed from the store, positions, waiters.

A projection subscribes from position 0 at start (a rebuild; the store is the checkpoint),
folds the events of its stream category, keeps ``applied_position`` and wakes read-your-writes
waiters as positions are applied. It reads every category so ``applied_position`` reaches the
store's last position at start even when the newest event is not one of its own; other
events are skipped after one string check.
"""

import asyncio
import heapq
import itertools
import logging

import msgspec

from parley.aggregates.agent import CorruptStreamError
from parley.contracts.envelope import Event
from parley.eventstore import EventStore, Subscription

__all__ = ["FoldingProjection"]

log = logging.getLogger(__name__)
_RETRY_S = 0.5


class FoldingProjection:
    """Base of a projection that folds the streams whose names start with ``prefix``.

    Subclasses set ``prefix`` and ``name`` and implement :meth:`_fold`.
    """

    prefix = ""
    """Stream-name prefix of the events folded, e.g. ``agent-``."""
    name = "projection"
    """For the task name and log lines."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.applied_position = 0
        """Position of the last event folded (of any category)."""
        self.target_position = 0
        """The store's last position at start; the projection is ready once it gets there."""
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._stopping = False

    @property
    def ready(self) -> bool:
        """Whether the rebuild has caught up with the store as it was at start."""
        return self._task is not None and self.applied_position >= self.target_position

    async def start(self) -> None:
        """Note the store's last position and start folding from position 0."""
        self.target_position = await self.store.last_position()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop the subscription and fail pending waiters."""
        self._stopping = True
        if self._sub is not None:
            await self._sub.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _, _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()

    async def wait_for(self, position: int, within: float) -> bool:
        """Wait until ``position`` is applied; False if ``within`` seconds pass first."""
        if self.applied_position >= position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._seq), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            return self.applied_position >= position
        return True

    def apply(self, event: Event) -> None:
        """Fold one event; events at or before ``applied_position`` are ignored."""
        if event.position and event.position <= self.applied_position:
            return
        if event.stream.startswith(self.prefix):
            try:
                self._fold(event)
            except (msgspec.ValidationError, CorruptStreamError):
                log.exception("skipped unreadable event %s (%s)", event.id, event.type)
        if event.position:
            self.applied_position = event.position
            self._wake()

    def _fold(self, event: Event) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        waiters, applied = self._waiters, self.applied_position
        while waiters and waiters[0][0] <= applied:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)

    async def _run(self) -> None:
        while not self._stopping:
            self._sub = self.store.subscribe(self.applied_position)
            try:
                async for event in self._sub:
                    self.apply(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("%s feed failed; resubscribing", self.name)
            finally:
                await self._sub.close()
            if not self._stopping:
                await asyncio.sleep(_RETRY_S)  # back off before resubscribing
