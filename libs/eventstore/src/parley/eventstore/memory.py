"""An event store in memory: the port's whole contract, for tests and single-process tools.

It passes the same contract suite as JetStream and KurrentDB (``tests/contract``): dense
versions, optimistic concurrency, a retried append (same event ids) reported as the success
it was, all-or-nothing batches, a global position, catch-up-then-live subscriptions by
category, and checkpoints. Nothing survives the process.

Every call yields to the event loop once, as a network round trip would, so concurrent
writers interleave (and conflict) as they do against a real store.
"""

import asyncio
import itertools
from collections.abc import AsyncIterator
from collections.abc import Sequence

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore._codec import check_append
from parley.eventstore._codec import check_stream
from parley.eventstore._codec import encode_within
from parley.eventstore.port import ANY_VERSION
from parley.eventstore.port import AppendResult
from parley.eventstore.port import ConcurrencyConflict
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import Subscription

__all__ = ["MemoryEventStore"]


class MemoryEventStore:
    """Event store held in this process's memory."""

    def __init__(self, *, max_event_bytes: int = 1_048_576) -> None:
        self._max = max_event_bytes
        self._log: list[Event] = []
        """Every event in position order; position ``n`` is ``_log[n - 1]``."""
        self._streams: dict[str, list[Event]] = {}
        self._ids: dict[str, dict[str, Event]] = {}
        """Per stream, its events by id (a retried append is found here)."""
        self._checkpoints: dict[str, int] = {}
        self._appended = asyncio.Condition()
        self._feeds: set[_Feed] = set()
        self._closed = False

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append ``events`` atomically if ``stream`` is at ``expected_version``."""
        check_append(stream, events)
        await self._round_trip()
        stored = self._streams.setdefault(stream, [])
        known = self._ids.setdefault(stream, {}).get(events[-1].id)
        if known is not None:
            return AppendResult(known.version, known.position)  # already stored: a retry
        current = len(stored)
        if expected_version not in (ANY_VERSION, current):
            raise ConcurrencyConflict(stream, expected_version, current)
        recorded = [
            Event.record(e, stream=stream, version=current + i, position=len(self._log) + i)
            for i, e in enumerate(events, 1)
        ]
        for event in recorded:
            encode_within(event, self._max)
        stored.extend(recorded)
        self._log.extend(recorded)
        self._ids[stream].update((e.id, e) for e in recorded)
        async with self._appended:
            self._appended.notify_all()
        return AppendResult(recorded[-1].version, recorded[-1].position)

    async def read(self, stream: str, from_version: int = 1) -> list[Event]:
        """Events of ``stream`` from ``from_version`` on, in version order ([] if none)."""
        check_stream(stream)
        events = self._streams.get(stream, [])[max(from_version, 1) - 1 :]
        await self._round_trip()
        return events

    async def last_position(self) -> int:
        """Global position of the newest event in the store (0 when empty)."""
        await self._round_trip()
        return len(self._log)

    async def next_position(self, after: int, categories: Sequence[str]) -> int | None:
        """Position of the first event after ``after`` in a stream of ``categories``."""
        await self._round_trip()
        wanted = frozenset(categories)
        for event in itertools.islice(self._log, after, None):
            if event.stream.split("-", 1)[0] in wanted:
                return event.position
        return None

    def subscribe(
        self, from_position: int = 0, categories: Sequence[str] | None = None
    ) -> Subscription:
        """Events after ``from_position`` (exclusive), catch-up then live, in position order."""
        feed = _Feed(self, from_position, None if categories is None else frozenset(categories))
        self._feeds.add(feed)
        return feed

    def know_tail(self, stream: str, version: int, position: int, event_id: str) -> None:
        """Nothing to do: an append here needs no look at the stream's end."""

    async def load_checkpoint(self, name: str) -> int:
        """The position subscriber ``name`` last saved (0 if none)."""
        await self._round_trip()
        return self._checkpoints.get(name, 0)

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Save subscriber ``name``'s position."""
        await self._round_trip()
        self._checkpoints[name] = position

    async def close(self) -> None:
        """Stop every subscription; later calls fail."""
        self._closed = True
        for feed in list(self._feeds):
            await feed.close()

    async def _round_trip(self) -> None:
        if self._closed:
            raise EventStoreError("the memory event store is closed")
        await asyncio.sleep(0)


class _Feed:
    """One subscription: the log from a position on, then every append as it happens."""

    def __init__(
        self, store: MemoryEventStore, from_position: int, categories: frozenset[str] | None
    ) -> None:
        self._store, self._next, self._categories = store, from_position, categories
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        log, appended = self._store._log, self._store._appended
        while not self._closed:
            if self._next < len(log):
                event = log[self._next]
                self._next += 1
                if self._categories is None or event.stream.split("-", 1)[0] in self._categories:
                    yield event
                continue
            async with appended:
                await appended.wait_for(lambda: self._closed or self._next < len(log))

    async def close(self) -> None:
        """Stop the feed; an iteration waiting for events ends."""
        self._closed = True
        self._store._feeds.discard(self)
        async with self._store._appended:
            self._store._appended.notify_all()
