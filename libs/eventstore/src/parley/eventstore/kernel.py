"""The command kernel: load a stream, fold it, decide, append at the expected version, retry.

Deciders and folds are the aggregates' pure functions; the kernel is their only I/O.
"""

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import msgspec

from parley.contracts.envelope import Event, NewEvent
from parley.eventstore.port import NO_STREAM, ConcurrencyConflict, EventStore

__all__ = ["Loaded", "Outcome", "execute", "load"]

S = TypeVar("S")
Evolve = Callable[[S | None, Event], S | None]


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
    state: S | None = None
    version = position = 0
    for event in await store.read(stream):
        state = evolve(state, event)
        version, position = event.version, event.position
    return Loaded(state, version, position)


async def execute(
    store: EventStore,
    stream: str,
    decide: Callable[[S | None], Sequence[NewEvent]],
    evolve: Evolve[S],
    *,
    expected_version: int | None = None,
    retries: int = 5,
    loaded: Loaded[S] | None = None,
) -> Outcome[S]:
    """Load ``stream``, ``decide`` on its state, append the events, fold them in.

    With ``expected_version`` (a client's ``If-Match``) a stale state is the caller's conflict
    and raises ``ConcurrencyConflict``. Without it, a writer that lost a race reloads and
    decides again, up to ``retries`` times.

    ``loaded`` is the stream as the caller last saw it (e.g. a cache), saving the read. It
    may be stale: the append's expected version catches that, and any refusal on that copy
    (a conflict, a domain error) is retried once on a fresh read before it counts.
    """
    for attempt in range(retries + 1):
        trusted = loaded is None or attempt > 0
        if trusted:
            loaded = await load(store, stream, evolve)
        assert loaded is not None
        try:
            events = decide(loaded.state)  # first: a missing aggregate is the decider's error
            if expected_version is not None and loaded.version != expected_version:
                raise ConcurrencyConflict(stream, expected_version, loaded.version)
            if not events:
                return Outcome(loaded.state, loaded.version, loaded.position, 0)
            result = await store.append(stream, events, loaded.version or NO_STREAM)
        except ConcurrencyConflict:
            if trusted and (expected_version is not None or attempt == retries):
                raise
            continue
        except Exception:
            if trusted:
                raise
            continue
        state = loaded.state
        for offset, new in enumerate(events, start=1):
            state = evolve(state, Event.record(new, stream=stream, version=loaded.version + offset))
        return Outcome(state, result.version, result.position, len(events))
    raise AssertionError("unreachable")
