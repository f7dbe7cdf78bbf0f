"""A follower: folds the store's events in position order, catch-up then live.

Subclasses say which categories they read and how to fold one event; the follower keeps
``applied_position``, wakes read-your-writes waiters, and resubscribes after a failed feed.

A follower of some categories is sent only their events, so its applied position stops at
its own last event while the store's moves on. To wait for a position it asks the store
where its next event after what it applied is (:meth:`EventStore.next_position`): none up to
the position means it has seen everything of its categories there.
"""

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from collections.abc import Sequence

from parley.contracts.envelope import Event
from parley.eventstore.port import EventStore
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import Subscription

__all__ = ["Follower", "FollowerGroup"]

log = logging.getLogger(__name__)
_RETRY_S = 0.5


class _Feeding:
    """A task reading one subscription until stopped; a failed feed is opened again."""

    name = "feed"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._stopping = False

    async def _halt(self) -> None:
        """Close the subscription and end the task."""
        self._stopping = True
        if self._sub is not None:
            await self._sub.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _feed(
        self, open_feed: Callable[[], Subscription], apply: Callable[[Event], None]
    ) -> None:
        """Apply every event of ``open_feed()``; after a failure, wait and open it again."""
        while not self._stopping:
            self._sub = open_feed()
            try:
                async for event in self._sub:
                    apply(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("%s feed failed; resubscribing", self.name)
            finally:
                await self._sub.close()
            if not self._stopping:
                await asyncio.sleep(_RETRY_S)


class Follower(_Feeding):
    """Base of in-memory views kept up to date from the event store."""

    categories: Sequence[str] | None = None
    """Stream categories to read; None reads every stream."""
    name = "follower"

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.store = store
        self.applied_position = 0
        self.target_position = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._grouped = False
        self._quiet_to = 0
        """Every followed event up to here is applied (the store has none of them above
        ``applied_position``)."""

    def fold(self, event: Event) -> None:
        """Fold one event of the followed categories (overridden by subclasses)."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        """Whether the catch-up reached the store's last position as it was at start."""
        started = self._task is not None or self._grouped
        return started and self.caught_up(self.target_position)

    def caught_up(self, position: int) -> bool:
        """Whether every followed event up to ``position`` is applied, as far as known."""
        return self.applied_position >= position or self._quiet_to >= position

    async def start(self, after: int = 0) -> None:
        """Note the store's last position and start following after ``after`` (0: from the
        first event)."""
        self.applied_position = max(self.applied_position, after)
        self.target_position = await self.store.last_position()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop following; pending waiters are cancelled."""
        await self._halt()
        for _, _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()

    async def wait_for(self, position: int, within: float) -> bool:
        """Wait until every followed event up to ``position`` is applied; False if ``within``
        seconds pass first."""
        if self.caught_up(position):
            return True
        if self.categories is None or self._grouped:
            return await self._applied(position, within)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.caught_up(position):
            after = self.applied_position
            try:
                found = await self.store.next_position(after, self.categories)
            except EventStoreError as exc:
                log.warning("%s cannot tell whether it has caught up: %r", self.name, exc)
                return False
            if found is None or found > position:
                known = found - 1 if found is not None else min(position, self.target_position)
                self._quiet_to = max(self._quiet_to, known)
                return True
            if not await self._applied(found, deadline - loop.time()):
                return self.caught_up(position)
        return True

    async def _applied(self, position: int, within: float) -> bool:
        """Wait until ``position`` itself is applied; False if ``within`` seconds pass first."""
        if self.applied_position >= position:
            return True
        if within <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._seq), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            return self.applied_position >= position
        return True

    def apply(self, event: Event) -> None:
        """Fold ``event`` unless already applied; a bad event is logged and skipped."""
        if event.position and event.position <= self.applied_position:
            return
        try:
            self.fold(event)
        except Exception:
            log.exception("%s skipped unreadable event %s (%s)", self.name, event.id, event.type)
        if event.position:
            self.applied_position = event.position
            waiters = self._waiters
            while waiters and waiters[0][0] <= event.position:
                _, _, future = heapq.heappop(waiters)
                if not future.done():
                    future.set_result(None)

    async def _run(self) -> None:
        await self._feed(
            lambda: self.store.subscribe(self.applied_position, self.categories), self.apply
        )


class FollowerGroup(_Feeding):
    """Several followers on one subscription: each event is read and decoded once.

    A process with many views (the edge) would otherwise hold a subscription per view and
    receive every event once per view.
    """

    def __init__(self, store: EventStore, members: Sequence[Follower], name: str = "views") -> None:
        super().__init__()
        self.store, self.members, self.name = store, list(members), name

    async def start(self) -> None:
        """Note the store's last position for every member and start following from 0."""
        target = await self.store.last_position()
        for member in self.members:
            member.target_position = target
            member._grouped = True
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop following; the members' pending waiters are cancelled."""
        await self._halt()
        for member in self.members:
            await member.stop()

    async def _run(self) -> None:
        members = self.members

        def apply(event: Event) -> None:
            for member in members:
                member.apply(event)

        await self._feed(
            lambda: self.store.subscribe(min(member.applied_position for member in members)),
            apply,
        )
