"""The command kernel over a real store: decide on a (possibly stale) state, append, retry."""

import uuid

import pytest

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore import ConcurrencyConflict
from parley.eventstore import EventStore
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Repository
from parley.eventstore.repository import execute
from parley.eventstore.repository import load


def _count(state: int | None, event: Event) -> int:
    return (state or 0) + 1


def _increment(state: int | None) -> list[NewEvent]:
    return [NewEvent(type="counter.incremented", subject="c", data={"from": state or 0})]


def _stream() -> str:
    return f"counter-{uuid.uuid4().hex}"


async def test_a_command_on_a_fresh_stream_appends_and_folds_its_events(store: EventStore) -> None:
    stream = _stream()
    outcome = await execute(store, stream, _increment, _count)
    assert (outcome.state, outcome.version, outcome.appended) == (1, 1, 1)
    assert (await load(store, stream, _count)).state == 1


async def test_a_stale_cached_state_is_caught_by_the_append_and_decided_again(
    store: EventStore,
) -> None:
    stream = _stream()
    stale = Loaded(None, 0, 0)  # a cache from before two other writers moved the stream on
    await execute(store, stream, _increment, _count)
    await execute(store, stream, _increment, _count)
    outcome = await execute(store, stream, _increment, _count, loaded=stale)
    assert (outcome.state, outcome.version) == (3, 3)
    froms = [e.data["from"] for e in await store.read(stream)]
    assert froms == [0, 1, 2]  # decided on the real state, nothing lost or duplicated


async def test_a_stale_cache_does_not_turn_a_correct_if_match_into_a_conflict(
    store: EventStore,
) -> None:
    stream = _stream()
    stale = (await execute(store, stream, _increment, _count)).state
    await execute(store, stream, _increment, _count)
    outcome = await execute(
        store, stream, _increment, _count, expected_version=2, loaded=Loaded(stale, 1, 0)
    )
    assert outcome.version == 3


async def test_a_stale_if_match_is_a_conflict(store: EventStore) -> None:
    stream = _stream()
    await execute(store, stream, _increment, _count)
    await execute(store, stream, _increment, _count)
    with pytest.raises(ConcurrencyConflict) as conflict:
        await execute(store, stream, _increment, _count, expected_version=1)
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    assert len(await store.read(stream)) == 2


async def test_a_decision_refused_on_a_stale_cache_is_retried_on_the_real_state(
    store: EventStore,
) -> None:
    stream = _stream()
    await execute(store, stream, _increment, _count)

    def only_after_the_first(state: int | None) -> list[NewEvent]:
        if not state:
            raise ValueError("refused: nothing to follow")
        return _increment(state)

    outcome = await execute(store, stream, only_after_the_first, _count, loaded=Loaded(None, 0, 0))
    assert outcome.version == 2


class _CountingReads:
    """``store``, counting its reads (what a command costs besides its append)."""

    def __init__(self, store: EventStore) -> None:
        self.store, self.reads = store, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def read(self, stream: str, from_version: int = 1) -> list[Event]:
        self.reads += 1
        return await self.store.read(stream, from_version)


async def test_an_observed_append_keeps_the_cache_current_so_a_command_reads_nothing(
    store: EventStore,
) -> None:
    counting = _CountingReads(store)
    repository = Repository(counting, _count)  # type: ignore[arg-type]
    stream = _stream()
    await repository.execute(stream, _increment)  # cached at version 1
    other = await execute(store, stream, _increment, _count)  # another process appends
    (seen,) = await store.read(stream, other.version)
    repository.observe(seen)
    repository.observe(seen)  # already folded: unchanged
    cached = repository.cached(stream)
    assert cached is not None and (cached.state, cached.version) == (2, 2)
    counting.reads = 0
    outcome = await repository.execute(stream, _increment)
    assert (outcome.state, outcome.version, counting.reads) == (3, 3, 0)


async def test_an_observed_event_after_a_gap_drops_the_copy(store: EventStore) -> None:
    repository = Repository(store, _count)
    stream = _stream()
    await repository.execute(stream, _increment)
    await execute(store, stream, _increment, _count)
    third = await execute(store, stream, _increment, _count)
    (seen,) = await store.read(stream, third.version)
    repository.observe(seen)  # version 3 on a copy at 1: it missed version 2
    assert repository.cached(stream) is None
    outcome = await repository.execute(stream, _increment)
    assert (outcome.state, outcome.version) == (4, 4)
