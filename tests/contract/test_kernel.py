"""The command kernel over a real store: decide on a (possibly stale) state, append, retry."""

import uuid

import pytest

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore import ConcurrencyConflict
from parley.eventstore import EventStore
from parley.eventstore.repository import Loaded
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
