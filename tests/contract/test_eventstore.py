"""One contract for every event store backend (ids: memory, jetstream, kurrentdb)."""

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import nats
import pytest

from parley.contracts import subjects
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import acting_as
from parley.eventstore import ANY_VERSION
from parley.eventstore import NO_STREAM
from parley.eventstore import ConcurrencyConflict
from parley.eventstore import EventStore
from parley.eventstore import EventStoreError
from parley.eventstore import EventTooLarge
from parley.eventstore import InvalidStreamName
from parley.eventstore import Subscription
from parley.eventstore import _jsfeed
from parley.eventstore import open_store
from parley.eventstore._jsdirect import Tail
from parley.eventstore.jetstream import JetStreamEventStore

MAX_EVENT_BYTES = 64 * 1024  # the limit the `store` fixture opens every backend with


def category() -> str:
    return "c" + uuid.uuid4().hex[:16]


def stream_of(cat: str | None = None) -> str:
    return f"{cat or category()}-{uuid.uuid4().hex}"


def new(n: int = 0, **data: object) -> NewEvent:
    return NewEvent(type="test.happened", subject="s", data={"n": n, **data})


async def take(sub: Subscription, count: int, within: float = 10.0) -> list[Event]:
    got: list[Event] = []

    async def run() -> None:
        async for event in sub:
            got.append(event)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), within)
    return got


async def another_process(store: EventStore, request: pytest.FixtureRequest) -> EventStore:
    """The store as a second process sees it: JetStream on a connection of its own (close
    it after); the other backends are one process's store, ``store`` itself."""
    if not isinstance(store, JetStreamEventStore):
        return store
    return await open_store(
        backend="jetstream",
        nats_url=request.getfixturevalue("nats_url"),
        stream_name="PARLEY_CONTRACT",
        max_event_bytes=MAX_EVENT_BYTES,
    )


async def append_each(store: EventStore, stream: str, events: Sequence[NewEvent]) -> list[int]:
    positions = []
    version = NO_STREAM
    for event in events:
        result = await store.append(stream, [event], version)
        version = result.version
        positions.append(result.position)
    return positions


async def test_appended_events_read_back_with_ids_types_data_and_dense_versions(
    store: EventStore,
) -> None:
    stream = stream_of()
    first = await store.append(stream, [new(1), new(2)], NO_STREAM)
    second = await store.append(stream, [new(3)], first.version)
    events = await store.read(stream)
    assert [e.version for e in events] == [1, 2, 3]
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert {e.type for e in events} == {"test.happened"}
    assert {e.stream for e in events} == {stream}
    assert first.version == 2 and second.version == 3
    assert events[0].position <= events[1].position < events[2].position
    assert first.position == events[1].position and second.position == events[2].position
    assert [e.version for e in await store.read(stream, from_version=2)] == [2, 3]
    assert await store.read(stream_of()) == []


async def test_appended_event_keeps_its_envelope(store: EventStore) -> None:
    stream = stream_of()
    sent = NewEvent(
        type="agent.created",
        subject="a1",
        data={"name": "x", "nested": {"k": [1, 2]}},
        namespace="tenant1",
        correlationid="corr",
        causationid="cause",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        actor="key:0193abcd",
    )
    await store.append(stream, [sent], NO_STREAM)
    [got] = await store.read(stream)
    assert got == Event.record(sent, stream=stream, version=1, position=got.position)


async def test_the_acting_principal_reads_back_and_comes_through_subscribe(
    store: EventStore,
) -> None:
    cat = category()
    stream = stream_of(cat)
    start = await store.last_position()
    named = NewEvent(type="test.happened", subject="s", data={"n": 1}, actor="key:alice")
    with acting_as("jwt:bob@example.com"):
        from_context = new(2)  # takes the running command's principal
    nobody = new(3)
    await store.append(stream, [named, from_context, nobody], NO_STREAM)
    read = await store.read(stream)
    sub = store.subscribe(from_position=start, categories=[cat])
    try:
        delivered = await take(sub, 3)
    finally:
        await sub.close()
    expected = ["key:alice", "jwt:bob@example.com", None]
    assert [e.actor for e in read] == expected
    assert [e.actor for e in delivered] == expected


async def test_a_malformed_actor_is_refused_and_nothing_is_stored(store: EventStore) -> None:
    stream = stream_of()
    bad = NewEvent(type="test.happened", subject="s", data={}, actor="key:x\nforged: line")
    with pytest.raises(ValueError, match="actor"):
        await store.append(stream, [new(1), bad], NO_STREAM)
    assert await store.read(stream) == []


async def test_no_stream_on_an_existing_stream_conflicts(store: EventStore) -> None:
    stream = stream_of()
    await store.append(stream, [new()], NO_STREAM)
    with pytest.raises(ConcurrencyConflict) as caught:
        await store.append(stream, [new()], NO_STREAM)
    assert (caught.value.expected, caught.value.actual) == (NO_STREAM, 1)
    assert len(await store.read(stream)) == 1


async def test_a_stale_expected_version_conflicts_with_the_actual_version(
    store: EventStore,
) -> None:
    stream = stream_of()
    await store.append(stream, [new(1), new(2), new(3)], NO_STREAM)
    with pytest.raises(ConcurrencyConflict) as caught:
        await store.append(stream, [new(4)], 2)
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (stream, 2, 3)
    with pytest.raises(ConcurrencyConflict):
        await store.append(stream_of(), [new()], 5)


async def test_any_version_appends_at_the_end(store: EventStore) -> None:
    stream = stream_of()
    assert (await store.append(stream, [new(1)], ANY_VERSION)).version == 1
    assert (await store.append(stream, [new(2), new(3)], ANY_VERSION)).version == 3
    assert [e.version for e in await store.read(stream)] == [1, 2, 3]


async def test_any_version_appends_from_two_processes_interleave_densely(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    """Each writer remembers the tail it last wrote; the other's appends make that stale,
    and an ANY_VERSION append still lands at the end, never over or beside them."""
    other = await another_process(store, request)
    try:
        stream = stream_of()
        versions = []
        for i in range(6):
            writer = store if i % 3 else other  # runs of two on one writer, then the other
            versions.append((await writer.append(stream, [new(i)], ANY_VERSION)).version)
        await asyncio.gather(
            *(
                w.append(stream, [new(10 + i)], ANY_VERSION)
                for i, w in enumerate([store, other] * 4)
            )
        )
        events = await store.read(stream)
        assert versions == [1, 2, 3, 4, 5, 6]
        assert [e.version for e in events] == list(range(1, 15))
        assert sorted(e.data["n"] for e in events) == [*range(6), *range(10, 18)]
    finally:
        if other is not store:
            await other.close()


async def test_an_append_at_the_end_on_a_hinted_tail_lands_right_even_on_a_wrong_hint(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    """Another process says where a stream ends (``know_tail``): on a right hint an append
    at the end does not look the end up (JetStream); on a stale or made-up one it still lands
    at the end, once."""
    other = await another_process(store, request)  # the hint comes from it
    try:
        stream = stream_of()
        written = [new(i) for i in range(2)]
        positions = await append_each(other, stream, written)
        store.know_tail(stream, 2, positions[-1], written[-1].id)
        looks = 0
        if isinstance(store, JetStreamEventStore):
            last = store._direct.last

            async def counted(subject: str) -> object:
                nonlocal looks
                looks += 1
                return await last(subject)

            store._direct.last = counted  # type: ignore[method-assign]
        assert (await store.append(stream, [new(2)], ANY_VERSION)).version == 3
        assert looks == 0
        await other.append(stream, [new(3)], ANY_VERSION)  # the hint goes stale
        store.know_tail(stream, 4, positions[-1] + 10**6, "not-an-event")  # a made-up one
        assert (await store.append(stream, [new(4)], ANY_VERSION)).version == 5
        events = await store.read(stream)
        assert [(e.version, e.data["n"]) for e in events] == [(v, v - 1) for v in range(1, 6)]
    finally:
        if other is not store:
            await other.close()


async def test_a_read_from_a_later_version_gets_every_event_after_it_even_on_a_made_up_tail(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    """A writer that lost a race reads on from the version it knew: every later event, in
    order, none before. JetStream starts that read at the last event this process wrote
    there, not at the stream's first; a remembered tail that is not there (made up, or a
    server that lost its storage) is noticed and the stream read from its first."""
    other = await another_process(store, request)
    try:
        stream = stream_of()
        mine = await append_each(store, stream, [new(i) for i in range(3)])
        for i in range(3, 6):
            await other.append(stream, [new(i)], ANY_VERSION)
        starts: list[int] = []
        if isinstance(store, JetStreamEventStore):
            publish = store._direct._nc.publish

            async def seen(subject: str, payload: bytes = b"", **kw: Any) -> None:
                if subject.startswith("$JS.API.DIRECT.GET."):
                    starts.append(json.loads(payload)["seq"])
                await publish(subject, payload, **kw)

            store._direct._nc.publish = seen  # type: ignore[method-assign]
        events = await store.read(stream, 4)
        assert [(e.version, e.data["n"]) for e in events] == [(4, 3), (5, 4), (6, 5)]
        if isinstance(store, JetStreamEventStore):
            assert starts == [mine[-1]]  # at its own last append, not at 1
            subject = subjects.events(stream)
            store._tails[subject] = Tail("not-an-event", 5, mine[-1] + 10**6)
            starts.clear()
            assert [e.version for e in await store.read(stream, 6)] == [6]
            assert starts == [mine[-1] + 10**6, 1]  # the made-up tail, then from the first
    finally:
        if other is not store:
            await other.close()


async def test_racing_writers_win_each_version_exactly_once_without_gaps_or_losses(
    store: EventStore,
) -> None:
    stream = stream_of()
    writers, per_writer = 10, 8
    written: list[str] = []
    conflicts = 0

    async def writer(w: int) -> None:
        nonlocal conflicts
        for i in range(per_writer):
            event = new(w * 100 + i)
            while True:
                current = len(await store.read(stream))
                try:
                    await store.append(stream, [event], current)
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                written.append(event.id)
                break

    await asyncio.gather(*(writer(w) for w in range(writers)))
    events = await store.read(stream)
    assert [e.version for e in events] == list(range(1, writers * per_writer + 1))
    assert sorted(e.id for e in events) == sorted(written)
    assert len(set(written)) == writers * per_writer
    assert conflicts > 0


async def test_racing_writers_on_one_version_exactly_one_wins(store: EventStore) -> None:
    stream = stream_of()
    await store.append(stream, [new()], NO_STREAM)
    outcomes = await asyncio.gather(
        *(store.append(stream, [new(i)], 1) for i in range(10)), return_exceptions=True
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if o not in winners)
    assert len(await store.read(stream)) == 2


async def test_the_same_event_id_appended_twice_is_stored_once(store: EventStore) -> None:
    stream = stream_of()
    event = new()
    first = await store.append(stream, [event], NO_STREAM)
    again = await store.append(stream, [event], NO_STREAM)
    any_again = await store.append(stream, [event], ANY_VERSION)
    assert again == first == any_again
    assert [e.id for e in await store.read(stream)] == [event.id]


async def test_a_retried_append_whose_first_try_succeeded_reports_success(
    store: EventStore,
) -> None:
    stream = stream_of()
    await store.append(stream, [new(1)], NO_STREAM)
    batch = [new(2), new(3)]
    first = await store.append(stream, batch, 1)
    retried = await store.append(stream, batch, 1)
    assert retried == first
    assert len(await store.read(stream)) == 3


async def test_concurrent_retries_of_one_append_all_report_the_same_success(
    store: EventStore,
) -> None:
    stream = stream_of()
    await store.append(stream, [new(1)], NO_STREAM)
    single, batch = [new(2)], [new(3), new(4)]
    singles = await asyncio.gather(*(store.append(stream, single, 1) for _ in range(5)))
    batches = await asyncio.gather(*(store.append(stream, batch, 2) for _ in range(5)))
    assert len(set(singles)) == 1 and singles[0].version == 2
    assert len(set(batches)) == 1 and batches[0].version == 4
    assert [e.data["n"] for e in await store.read(stream)] == [1, 2, 3, 4]


async def test_a_multi_event_append_is_all_or_nothing(store: EventStore) -> None:
    stream = stream_of()
    huge = new(2, blob="x" * MAX_EVENT_BYTES)
    with pytest.raises(EventTooLarge):
        await store.append(stream, [new(1), huge, new(3)], NO_STREAM)
    assert await store.read(stream) == []
    await store.append(stream, [new(1)], NO_STREAM)
    with pytest.raises(ConcurrencyConflict):
        await store.append(stream, [new(2), new(3), new(4)], NO_STREAM)
    assert [e.data["n"] for e in await store.read(stream)] == [1]


async def test_an_oversized_event_is_refused_and_nothing_is_stored(store: EventStore) -> None:
    stream = stream_of()
    with pytest.raises(EventTooLarge) as caught:
        await store.append(stream, [new(blob="x" * MAX_EVENT_BYTES)], NO_STREAM)
    assert caught.value.limit == MAX_EVENT_BYTES and caught.value.size > MAX_EVENT_BYTES
    assert await store.read(stream) == []


@pytest.mark.parametrize("name", ["Agent-1", "agent", "agent-", "-1", "agent-a.b", "agent-a b"])
async def test_an_invalid_stream_name_is_refused(store: EventStore, name: str) -> None:
    with pytest.raises(InvalidStreamName):
        await store.append(name, [new()], NO_STREAM)
    with pytest.raises(InvalidStreamName):
        await store.read(name)


async def test_last_position_is_the_position_of_the_newest_event(store: EventStore) -> None:
    before = await store.last_position()
    result = await store.append(stream_of(), [new()], NO_STREAM)
    assert result.position > before
    assert await store.last_position() == result.position


async def test_a_subscription_catches_up_from_a_position_then_goes_live_in_order(
    store: EventStore,
) -> None:
    cat = category()
    stream = stream_of(cat)
    positions = await append_each(store, stream, [new(1), new(2), new(3)])
    sub = store.subscribe(from_position=positions[0], categories=[cat])
    try:
        caught_up = await take(sub, 2)
        assert [e.data["n"] for e in caught_up] == [2, 3]
        live = asyncio.create_task(take(sub, 2))
        await store.append(stream, [new(4)], 3)
        await store.append(stream, [new(5)], 4)
        events = await live
        assert [e.data["n"] for e in events] == [4, 5]
        assert [e.version for e in events] == [4, 5]
        assert events[0].position < events[1].position
    finally:
        await sub.close()


async def test_a_subscription_to_every_category_sees_new_streams(store: EventStore) -> None:
    start = await store.last_position()
    sub = store.subscribe(from_position=start)
    try:
        result = await store.append(stream_of(), [new(7)], NO_STREAM)
        [event] = await take(sub, 1)
        assert (event.data["n"], event.position) == (7, result.position)
    finally:
        await sub.close()


async def test_a_subscription_filtered_by_category_sees_only_that_category(
    store: EventStore,
) -> None:
    wanted, other = category(), category()
    start = await store.last_position()
    a, b = stream_of(wanted), stream_of(other)
    await store.append(a, [new(1)], NO_STREAM)
    await store.append(b, [new(100)], NO_STREAM)
    await store.append(a, [new(2)], 1)
    await store.append(b, [new(200)], 1)
    await store.append(a, [new(3)], 2)
    sub = store.subscribe(from_position=start, categories=[wanted])
    try:
        events = await take(sub, 3)
    finally:
        await sub.close()
    assert [(e.stream, e.data["n"]) for e in events] == [(a, 1), (a, 2), (a, 3)]


async def test_a_jetstream_feed_whose_server_falls_silent_starts_again_and_misses_nothing(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer behind a live feed is deleted without a word (as a restarted server
    forgets it): no heartbeat comes any more, and after three missed ones the feed makes its
    consumer again from the last event it saw."""
    monkeypatch.setattr(_jsfeed, "_HEARTBEAT_S", 0.3)
    store = await open_store(
        backend="jetstream",
        nats_url=nats_url,
        stream_name="PARLEY_CONTRACT",
        max_event_bytes=MAX_EVENT_BYTES,
    )
    nc = await nats.connect(nats_url)
    cat = category()
    stream = stream_of(cat)
    start = await store.last_position()
    sub = store.subscribe(from_position=start, categories=[cat])
    feed = aiter(sub)  # one iterator for the feed's life, as a follower holds it
    try:
        await store.append(stream, [new(1)], NO_STREAM)
        first = await asyncio.wait_for(anext(feed), 10)
        js = nc.jetstream()
        feeds = [
            info.name
            for info in await js.consumers_info("PARLEY_CONTRACT")
            if info.config.filter_subject == subjects.events_of_category(cat)
        ]
        assert len(feeds) == 1
        await js.delete_consumer("PARLEY_CONTRACT", feeds[0])
        await store.append(stream, [new(2)], 1)
        second = await asyncio.wait_for(anext(feed), 10)
        assert (first.data["n"], second.data["n"]) == (1, 2)
        assert second.position > first.position
    finally:
        await sub.close()
        await nc.close()
        await store.close()


async def test_next_position_finds_the_first_event_of_the_categories_after_a_position(
    store: EventStore,
) -> None:
    wanted, also, other = category(), category(), category()
    start = await store.last_position()
    assert await store.next_position(start, [wanted, also]) is None
    first_other = (await store.append(stream_of(other), [new(1)], NO_STREAM)).position
    first_wanted = (await store.append(stream_of(wanted), [new(2)], NO_STREAM)).position
    first_also = (await store.append(stream_of(also), [new(3)], NO_STREAM)).position
    await store.append(stream_of(other), [new(4)], NO_STREAM)

    assert await store.next_position(start, [wanted, also]) == first_wanted
    assert await store.next_position(first_other, [also, wanted]) == first_wanted
    assert await store.next_position(first_wanted, [wanted, also]) == first_also
    assert await store.next_position(first_also, [wanted, also]) is None
    assert await store.next_position(start, [other]) == first_other


async def test_resuming_from_a_saved_checkpoint_gets_exactly_the_events_after_it(
    store: EventStore,
) -> None:
    cat, name = category(), f"projection/{uuid.uuid4().hex}"
    stream = stream_of(cat)
    assert await store.load_checkpoint(name) == 0
    await append_each(store, stream, [new(1), new(2)])
    sub = store.subscribe(0, categories=[cat])
    try:
        done = await take(sub, 2)
    finally:
        await sub.close()
    await store.save_checkpoint(name, done[-1].position)
    await store.append(stream, [new(3), new(4)], 2)
    resumed = store.subscribe(await store.load_checkpoint(name), categories=[cat])
    try:
        assert [e.data["n"] for e in await take(resumed, 2)] == [3, 4]
    finally:
        await resumed.close()
    await store.save_checkpoint(name, 12345)
    assert await store.load_checkpoint(name) == 12345


async def test_an_unknown_backend_is_refused_with_what_to_do() -> None:
    with pytest.raises(EventStoreError, match="PARLEY_EVENTSTORE"):
        await open_store(backend="mongo")


async def test_kurrentdb_without_a_url_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_KURRENTDB_URL", raising=False)
    with pytest.raises(EventStoreError, match="set PARLEY_KURRENTDB_URL"):
        await open_store(backend="kurrentdb")
