"""One live feed of the store for every event stream of this edge process (SSE and ``/ws``).

Without it each subscriber holds its own store subscription: a JetStream consumer per
subscriber, every event sent by NATS and decoded once per subscriber. The hub reads the
store once, from the position of the first subscriber on, keeps the last ``keep`` events,
and hands each event to every subscriber whose start it passed:

- A subscription that starts at or after the hub's *floor* (the position after which the
  hub has seen, or will see, every event) is served by the hub: the kept events after its
  start, then the live ones. One that starts further back reads its own store subscription,
  as before.
- Each subscriber has its own bounded backlog and task, so one slow client never holds up
  the others. A subscriber whose backlog overflows leaves the hub and carries on from its
  own store subscription after the last event it was handed: nothing is lost or repeated.
- The hub's own feed failing (NATS restarting) is not the subscribers' concern: the hub
  subscribes again from the last event it saw, and they wait meanwhile.

Every subscription keeps the interface of :meth:`EventStore.subscribe`, so the pumps that
filter and deliver events do not know which kind they hold.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from collections.abc import Sequence

from parley.contracts.envelope import Event
from parley.eventstore.port import EventStore
from parley.eventstore.port import Subscription

__all__ = ["Hub"]

log = logging.getLogger(__name__)

_RETRY_S = 0.5


class Hub:
    """Serves event subscriptions of this process from one store subscription."""

    def __init__(self, store: EventStore, *, keep: int = 4096, backlog: int = 4096) -> None:
        self._store, self._keep, self._backlog = store, keep, backlog
        self._recent: deque[Event] = deque()
        self._floor: int | None = None
        self._seen = 0
        self._listeners: set[_HubFeed] = set()
        self._task: asyncio.Task[None] | None = None

    def subscribe(
        self, from_position: int = 0, categories: Sequence[str] | None = None
    ) -> Subscription:
        """Events after ``from_position``: from the hub when it has them, else from the store."""
        if self._floor is None:  # the first subscriber: the hub starts where it starts
            self._floor = self._seen = from_position
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-hub")
        if from_position < self._floor:
            return self._store.subscribe(from_position, categories)
        feed = _HubFeed(self, from_position, categories)
        self._join(feed)  # now, not on its first read: the kept events may move on meanwhile
        return feed

    @property
    def subscribers(self) -> int:
        """Subscriptions the hub serves now."""
        return len(self._listeners)

    async def stop(self) -> None:
        """Stop the hub's feed (its subscribers' tasks end with their responses)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _join(self, feed: "_HubFeed") -> None:
        """Register ``feed`` and hand it the kept events after its start (one step: no gap)."""
        for event in self._recent:
            if event.position > feed.after:
                feed.offer(event)
        self._listeners.add(feed)

    def _leave(self, feed: "_HubFeed") -> None:
        self._listeners.discard(feed)

    async def _run(self) -> None:
        while True:
            subscription = self._store.subscribe(self._seen)
            try:
                async for event in subscription:
                    self._publish(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store comes back: resubscribe
                log.warning("the event hub's feed failed (%r); subscribing again", exc)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.close()
            await asyncio.sleep(_RETRY_S)

    def _publish(self, event: Event) -> None:
        if event.position <= self._seen:
            return  # a resubscription's overlap
        self._seen = event.position
        recent = self._recent
        recent.append(event)
        if len(recent) > self._keep:
            self._floor = recent.popleft().position
        for feed in list(self._listeners):
            if not feed.offer(event):
                self._listeners.discard(feed)  # too far behind: it reads the store itself


class _HubFeed:
    """One subscription served by the hub, with its own backlog; a store subscription after
    an overflow."""

    def __init__(self, hub: Hub, after: int, categories: Sequence[str] | None) -> None:
        self._hub, self.after = hub, after
        self._categories = frozenset(categories) if categories is not None else None
        self._backlog: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._overflowed = False
        self._closed = False
        self._own: Subscription | None = None

    def offer(self, event: Event) -> bool:
        """Take ``event`` if it is after this feed's start; False once the backlog is full."""
        if event.position <= self.after or self._overflowed or self._closed:
            return not self._overflowed
        if self._categories is not None and event.stream.partition("-")[0] not in self._categories:
            return True
        if len(self._backlog) >= self._hub._backlog:
            self._overflowed = True
            self._wake.set()
            return False
        self._backlog.append(event)
        self._wake.set()
        return True

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        hub, backlog = self._hub, self._backlog
        try:
            while not self._closed:
                while backlog:
                    event = backlog.popleft()
                    self.after = event.position
                    yield event
                if self._overflowed or self._closed:
                    break
                self._wake.clear()
                await self._wake.wait()
        finally:
            hub._leave(self)
        if self._closed:
            return
        # Fell too far behind the others: read on alone, after the last event handed out.
        self._own = hub._store.subscribe(
            self.after, sorted(self._categories) if self._categories is not None else None
        )
        async for event in self._own:
            yield event

    async def close(self) -> None:
        """Stop the feed (its iteration ends)."""
        self._closed = True
        self._wake.set()
        self._hub._leave(self)
        if self._own is not None:
            await self._own.close()
