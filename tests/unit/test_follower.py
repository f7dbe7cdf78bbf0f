"""A follower of some categories waits for a position it is never sent (memory store)."""

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore import NO_STREAM
from parley.eventstore.follower import Follower
from parley.eventstore.memory import MemoryEventStore


class Agents(Follower):
    categories = ("agent",)
    name = "test-agents"

    def __init__(self, store: MemoryEventStore) -> None:
        super().__init__(store)
        self.seen: list[str] = []

    def fold(self, event: Event) -> None:
        self.seen.append(event.stream)


def new() -> NewEvent:
    return NewEvent(type="test.happened", subject="s", data={})


async def test_a_filtered_follower_is_caught_up_to_positions_of_other_categories() -> None:
    store = MemoryEventStore()
    await store.append("agent-a", [new()], NO_STREAM)
    await store.append("task-t", [new()], NO_STREAM)
    follower = Agents(store)
    await follower.start()
    try:
        assert await follower.wait_for(follower.target_position, 2.0)
        assert follower.ready and follower.seen == ["agent-a"]
        late = (await store.append("task-u", [new()], NO_STREAM)).position
        assert await follower.wait_for(late, 2.0)  # nothing of its own up to there
        mine = (await store.append("agent-b", [new()], NO_STREAM)).position
        after = (await store.append("task-v", [new()], NO_STREAM)).position
        assert await follower.wait_for(after, 2.0)
        assert follower.applied_position == mine and follower.seen == ["agent-a", "agent-b"]
    finally:
        await follower.stop()


async def test_a_filtered_follower_does_not_claim_an_event_it_has_not_applied() -> None:
    store = MemoryEventStore()
    follower = Agents(store)
    await follower.start()
    await follower.stop()  # its feed is gone: nothing more is applied
    mine = (await store.append("agent-a", [new()], NO_STREAM)).position
    await store.append("task-t", [new()], NO_STREAM)
    assert not await follower.wait_for(mine + 1, 0.2)
    assert follower.seen == []
