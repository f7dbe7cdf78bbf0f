"""An agent's instance slots, shared by runtime processes through the session's real
nats-server: a slot freed by a turn is kept for the agent's next turn in that process, without
a write, and given back when none comes; the instance limit holds across processes meanwhile."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from parley.contracts import subjects
from parley.eventstore.memory import MemoryEventStore
from parley.runtime.adapters import slots
from parley.runtime.adapters.slots import KEEP_S
from parley.runtime.adapters.slots import Capacity


@pytest.fixture
async def runtimes(connections: list[Client]) -> AsyncIterator[list[Capacity]]:
    """Two runtime processes' slot holders, on one bucket."""
    store = MemoryEventStore()
    held = [
        Capacity(
            nc.jetstream(),
            store,
            worker=f"runtime-{n}",
            queue_limit=8,
            queue_timeout=2.0,
            lease_ttl=30.0,
            idle_timeout=60.0,
        )
        for n, nc in enumerate(connections)
    ]
    for capacity in held:
        await capacity.start()
    yield held
    for capacity in held:
        await capacity.stop()


async def _writes(nc: Client) -> int:
    """Writes the slot bucket has taken so far."""
    info = await nc.jetstream().stream_info(f"KV_{subjects.SLOTS_BUCKET}")
    return info.state.last_seq


async def _holder(nc: Client, key: str) -> bytes:
    """Who holds ``key`` (empty: free)."""
    kv = await nc.jetstream().key_value(subjects.SLOTS_BUCKET)
    return (await kv.get(key)).value or b""


async def test_back_to_back_turns_take_their_slot_without_a_write(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    before = await _writes(connections[0])
    for _ in range(10):
        async with runtimes[0].slot(agent, 1, "default"):
            pass
    assert await _writes(connections[0]) - before == 1  # the first take, nothing since
    assert await _holder(connections[0], f"{agent}.0") == b"runtime-0"  # kept, still held
    await asyncio.sleep(KEEP_S * 3)
    assert await _holder(connections[0], f"{agent}.0") == b""  # given back: nobody came
    assert await _writes(connections[0]) - before == 2


async def test_a_kept_slot_still_counts_against_the_limit_in_other_processes(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    async with runtimes[0].slot(agent, 1, "default"):
        pass
    loop = asyncio.get_running_loop()
    freed = loop.time()
    async with runtimes[1].slot(agent, 1, "default"):
        waited = loop.time() - freed
        assert await _holder(connections[1], f"{agent}.0") == b"runtime-1"
    assert waited >= KEEP_S * 0.9  # it waited for the kept slot to be given back


async def test_a_slot_held_long_is_given_back_when_its_turn_ends(
    runtimes: list[Capacity], connections: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slots, "HOLD_MAX_S", 0.05)
    agent = f"agent-{uuid.uuid4().hex}"
    async with runtimes[0].slot(agent, 1, "default"):
        await asyncio.sleep(0.1)
    assert await _holder(connections[0], f"{agent}.0") == b""  # at once, not kept


async def test_a_stopping_runtime_gives_back_the_slots_it_keeps(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    async with runtimes[0].slot(agent, 2, "default"):
        pass
    await runtimes[0].stop()
    assert await _holder(connections[0], f"{agent}.0") == b""


async def test_fewer_instances_do_not_reuse_a_kept_slot_above_the_new_count(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    async with runtimes[0].slot(agent, 2, "default"), runtimes[0].slot(agent, 2, "default"):
        pass  # slots 0 and 1 both kept now
    async with runtimes[0].slot(agent, 1, "default") as index:
        assert index == 0
