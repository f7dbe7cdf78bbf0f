"""The one command path: load a stream, fold it, decide, append at the expected version, retry.

Deciders and folds are the aggregates' pure functions (:mod:`parley.aggregates`); this module
is their only I/O and the only place a :class:`ConcurrencyConflict` is handled:

- a writer that lost a race reloads and decides again, after a short random pause (jitter,
  so many writers on one stream do not retry in lock step);
- an append whose first try landed but whose answer was lost (a timeout, a reconnect) is
  reported as the success it was, not as a conflict with itself;
- a client's ``If-Match`` (``expected_version``) that is stale is the caller's conflict and
  raises.

:class:`Repository` adds a bounded cache of folded streams, so a command costs one append and
not a read and an append; a stale copy is caught by the append's expected version.
"""

import asyncio
import random
from collections.abc import Callable
from collections.abc import Sequence
from typing import Generic
from typing import TypeVar

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore.port import NO_STREAM
from parley.eventstore.port import ConcurrencyConflict
from parley.eventstore.port import EventStore

__all__ = ["Decide", "Evolve", "Loaded", "Outcome", "Repository", "backoff", "execute", "load"]

S = TypeVar("S")
Evolve = Callable[[S | None, Event], S | None]
Decide = Callable[[S | None], Sequence[NewEvent]]

RETRIES = 5
"""How often a writer that lost a race decides again before the conflict is raised."""
JITTER = 0.002
"""Upper bound (seconds) of the random pause before the first retry; doubles each retry."""
JITTER_CAP = JITTER * 2**RETRIES
"""The most the upper bound of one pause grows to, however many retries."""


async def backoff(attempt: int, jitter: float = JITTER, cap: float | None = None) -> None:
    """Pause before retry ``attempt`` (0 for the first) of a writer that lost a race.

    Full jitter: a random pause up to ``jitter``, doubling each retry up to ``cap``
    (:data:`JITTER_CAP` when None), so writers racing on one stream do not retry in lock
    step. The one retry pause of the event store, used by :func:`execute` and the adapters.
    """
    bound = min(jitter * 2.0**attempt, JITTER_CAP if cap is None else cap)
    await asyncio.sleep(random.uniform(0, bound))


class Loaded(msgspec.Struct, Generic[S]):
    """A stream folded into state."""

    state: S | None
    version: int
    """Version of the last event folded (0 for a new stream)."""
    position: int
    """Global position of the last event folded (0 for a new stream)."""


class Outcome(msgspec.Struct, Generic[S]):
    """What a command did: the new state and where its events landed."""

    state: S | None
    version: int
    position: int
    appended: int
    """How many events were appended (0 when the decision was a no-op)."""


async def load(store: EventStore, stream: str, evolve: Evolve[S]) -> Loaded[S]:
    """Read ``stream`` and fold it with ``evolve``."""
    return fold(await store.read(stream), evolve)


def fold(events: Sequence[Event], evolve: Evolve[S], start: Loaded[S] | None = None) -> Loaded[S]:
    """Fold ``events`` onto ``start`` (an empty stream when None)."""
    state, version, position = (
        (start.state, start.version, start.position) if start else (None, 0, 0)
    )
    for event in events:
        state = evolve(state, event)
        version, position = event.version, event.position
    return Loaded(state, version, position)


async def execute(
    store: EventStore,
    stream: str,
    decide: Decide[S],
    evolve: Evolve[S],
    *,
    expected_version: int | None = None,
    retries: int = RETRIES,
    jitter: float = JITTER,
    jitter_cap: float | None = None,
    loaded: Loaded[S] | None = None,
) -> Outcome[S]:
    """Load ``stream``, ``decide`` on its state, append the events, fold them in.

    With ``expected_version`` (a client's ``If-Match``) a stale state is the caller's conflict
    and raises ``ConcurrencyConflict``. Without it, a writer that lost a race reloads and
    decides again, up to ``retries`` times, after a random pause of up to ``jitter`` seconds
    that doubles each retry (up to ``jitter_cap``, if given: a writer that holds a lock
    while it retries keeps its pauses short).

    ``loaded`` is the stream as the caller last saw it (e.g. a cache), saving the read. It
    may be stale: the append's expected version catches that, the events the copy misses are
    read and folded on (a tail read, not the whole stream: a long, busy stream stays cheap),
    and any other refusal on that copy (a domain error) is retried once on a fresh read
    before it counts.
    """
    trusted = loaded is None
    attempt = 0
    while True:
        if loaded is None:
            loaded = await load(store, stream, evolve)
        events: Sequence[NewEvent] = ()
        try:
            events = decide(loaded.state)  # first: a missing aggregate is the decider's error
            if expected_version is not None and loaded.version != expected_version:
                raise ConcurrencyConflict(stream, expected_version, loaded.version)
            if not events:
                return Outcome(loaded.state, loaded.version, loaded.position, 0)
            result = await store.append(stream, events, loaded.version or NO_STREAM)
        except ConcurrencyConflict:
            if not trusted:  # a stale copy: read what it misses (or all) and decide again
                after = await store.read(stream, loaded.version + 1)
                continues = bool(after) and after[0].version == loaded.version + 1
                loaded, trusted = (fold(after, evolve, loaded) if continues else None), True
                continue
            retry = expected_version is None and attempt < retries
            if retry:  # pause before reading, so the decision is on the freshest state
                await backoff(attempt, jitter, jitter_cap)
            after = await store.read(stream, loaded.version + 1)
            if events and [e.id for e in after[: len(events)]] == [e.id for e in events]:
                # our own append, whose first answer was lost: the success it was
                landed = fold(after[: len(events)], evolve, loaded)
                return Outcome(landed.state, landed.version, landed.position, len(events))
            if not retry:
                raise
            loaded = fold(after, evolve, loaded)  # another writer's events: decide on them
            attempt += 1
            continue
        except Exception:
            if trusted:
                raise
            loaded, trusted = None, True  # refused on a stale copy: ask the real state
            continue
        if result.version != loaded.version + len(events):
            # the store already held these event ids (a retried append): fold what it holds
            landed = await load(store, stream, evolve)
            return Outcome(landed.state, landed.version, landed.position, len(events))
        state = loaded.state
        for offset, new in enumerate(events, start=1):
            version = loaded.version + offset
            position = result.position if version == result.version else 0
            state = evolve(
                state, Event.record(new, stream=stream, version=version, position=position)
            )
        return Outcome(state, result.version, result.position, len(events))


class Repository(Generic[S]):
    """Commands on the streams of one aggregate type, with a bounded cache of their state.

    The cache holds each stream as this process last saw it. Another process may have moved
    the stream on since: the append's expected version catches that, and :func:`execute`
    reads again. A stream's state is cached after every command and every fresh load.
    """

    def __init__(self, store: EventStore, evolve: Evolve[S], *, cache_size: int = 10_000) -> None:
        self.store, self.evolve, self.cache_size = store, evolve, cache_size
        self._cache: dict[str, Loaded[S]] = {}

    async def load(self, stream: str, *, fresh: bool = False) -> Loaded[S]:
        """The stream's state: the cached copy unless ``fresh``, else read and folded."""
        cached = None if fresh else self._cache.get(stream)
        if cached is not None:
            return cached
        loaded = await load(self.store, stream, self.evolve)
        self.remember(stream, loaded)
        return loaded

    def cached(self, stream: str) -> Loaded[S] | None:
        """The cached copy of ``stream``, if any (it may be stale)."""
        return self._cache.get(stream)

    async def execute(
        self,
        stream: str,
        decide: Decide[S],
        *,
        expected_version: int | None = None,
        retries: int = RETRIES,
        jitter: float = JITTER,
        jitter_cap: float | None = None,
    ) -> Outcome[S]:
        """Decide on the stream's (cached) state and append; see :func:`execute`."""
        try:
            outcome = await execute(
                self.store,
                stream,
                decide,
                self.evolve,
                expected_version=expected_version,
                retries=retries,
                jitter=jitter,
                jitter_cap=jitter_cap,
                loaded=self._cache.get(stream),
            )
        except BaseException:
            self.forget(stream)  # the copy may be why; the next command reads afresh
            raise
        self.remember(stream, Loaded(outcome.state, outcome.version, outcome.position))
        return outcome

    def remember(self, stream: str, loaded: Loaded[S]) -> None:
        """Keep ``loaded`` as the stream's state (e.g. after the process's own append)."""
        if self.cache_size <= 0:
            return
        known = self._cache.pop(stream, None)
        if known is not None and known.version > loaded.version:
            loaded = known  # never go back to an older copy
        self._cache[stream] = loaded
        if len(self._cache) > self.cache_size:
            del self._cache[next(iter(self._cache))]  # the least recently changed

    def forget(self, stream: str) -> None:
        """Drop the cached copy of ``stream``."""
        self._cache.pop(stream, None)

    def observe(self, event: Event) -> None:
        """Fold ``event`` (read from the store, e.g. by this process's follower) into its
        stream's cached copy when it is the copy's next one.

        So a command on a stream another process appended to since needs no refused append
        and read to find out. A copy that holds the event already is left as it is; one that
        misses events before it is dropped (the next command reads afresh).
        """
        cached = self._cache.get(event.stream)
        if cached is None or event.version <= cached.version:
            return
        if event.version != cached.version + 1:
            self.forget(event.stream)
            return
        try:
            self.remember(event.stream, fold([event], self.evolve, cached))
        except Exception:
            self.forget(event.stream)  # the fold refused it: the store's copy decides
