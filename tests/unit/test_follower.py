"""Followers of some categories: one waits for a position it is never sent (memory store), and
the edge tells each service the newest position of the categories its view reads."""

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.edge.projections.positions import SeenPositions
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


async def test_the_edge_asks_each_service_for_the_newest_event_of_what_its_view_reads() -> None:
    store = MemoryEventStore()
    seen = SeenPositions(store)
    await seen.start()
    try:
        agent = (await store.append("agent-a", [new()], NO_STREAM)).position
        sent = (await store.append("conversation-c", [new()], NO_STREAM)).position
        turn = (await store.append("session-s", [new()], NO_STREAM)).position
        last = (await store.append("task-t", [new()], NO_STREAM)).position
        assert await seen.wait_for(last, 2.0)
        assert seen.messaging == sent  # agents and conversations
        assert seen.runtime == seen.tasks == turn  # agents, sessions, executions (+ deployments)
        assert seen.of(["agent"]) == agent and seen.of(["memory"]) == 0
    finally:
        await seen.stop()
