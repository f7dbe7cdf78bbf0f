"""An agent's instance slots, shared by runtime processes through the session's real
nats-server: a slot whose holder is gone (or says it does not hold it) is taken over at once,
not after its lease; a live holder's is not; a holder never frees a slot taken over from it."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from parley.contracts import subjects
from parley.eventstore.memory import MemoryEventStore
from parley.runtime.adapters import holders
from parley.runtime.adapters import slots
from parley.runtime.adapters.slots import Capacity
from parley.runtime.errors import RuntimeFault


@pytest.fixture
async def runtimes(connections: list[Client]) -> AsyncIterator[list[Capacity]]:
    """Two runtime processes' slot holders, on one bucket."""
    store = MemoryEventStore()
    held = [
        Capacity(
            nc,
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


async def _holder(nc: Client, key: str) -> bytes:
    """Who holds ``key`` (empty: free)."""
    kv = await nc.jetstream().key_value(subjects.SLOTS_BUCKET)
    return (await kv.get(key)).value or b""


async def _write(nc: Client, key: str, holder: bytes) -> None:
    kv = await nc.jetstream().key_value(subjects.SLOTS_BUCKET)
    await kv.put(key, holder)


async def test_a_slot_whose_holder_is_gone_is_taken_at_once(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    await _write(connections[0], f"{agent}.0", b"host:4242")  # a runtime killed mid-turn
    async with asyncio.timeout(2):  # its lease has 30 s left
        async with runtimes[0].slot(agent, 1, "default"):
            assert await _holder(connections[0], f"{agent}.0") == b"runtime-0"


async def test_a_slot_its_live_holder_says_it_does_not_hold_is_taken_at_once(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    await _write(connections[0], f"{agent}.0", b"runtime-1")  # runtime-1 lost its release
    async with asyncio.timeout(1), runtimes[0].slot(agent, 1, "default"):
        assert await _holder(connections[0], f"{agent}.0") == b"runtime-0"


async def test_a_slot_its_live_holder_holds_is_not_taken(
    runtimes: list[Capacity],
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    turn, ended = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with runtimes[1].slot(agent, 1, "default"):
            turn.set()
            await asyncio.sleep(0.5)  # longer than a holder's answer may take
            ended.set()

    holding = asyncio.create_task(hold())
    await turn.wait()
    async with runtimes[0].slot(agent, 1, "default"):
        assert ended.is_set()  # it waited for the holder's turn to end
    await holding


async def test_a_holder_does_not_free_a_slot_taken_over_from_it(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    async with runtimes[0].slot(agent, 1, "default"):
        await _write(connections[1], f"{agent}.0", b"runtime-1")  # taken over meanwhile
    assert await _holder(connections[0], f"{agent}.0") == b"runtime-1"


async def test_one_process_never_shares_a_namespace_slot_between_two_turns(
    connections: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(holders, "ALIVE_S", 0.0)
    capacity = Capacity(
        connections[0],
        MemoryEventStore(),
        worker="runtime-q",
        queue_limit=8,
        queue_timeout=2.0,
        lease_ttl=30.0,
        idle_timeout=60.0,
        namespace_quota=1,
    )
    await capacity.start()
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    try:
        async with capacity.slot(f"agent-{uuid.uuid4().hex}", 1, namespace):
            with pytest.raises(RuntimeFault) as refused:
                async with capacity.slot(f"agent-{uuid.uuid4().hex}", 1, namespace):
                    pass
        assert refused.value.code == "QUOTA_EXCEEDED"
    finally:
        await capacity.stop()


async def _left_spare(capacity: Capacity, monkeypatch: pytest.MonkeyPatch, spare_s: float) -> str:
    """A new agent whose one slot a turn on ``capacity`` has just left spare (for
    ``spare_s`` seconds)."""
    monkeypatch.setattr(slots, "SPARE_S", spare_s)
    agent = f"agent-{uuid.uuid4().hex}"
    async with capacity.slot(agent, 1, "default"):
        pass
    return agent


async def test_a_slot_a_turn_is_done_with_serves_the_agents_next_turn_without_a_write(
    runtimes: list[Capacity], connections: list[Client]
) -> None:
    agent = f"agent-{uuid.uuid4().hex}"
    kv = await connections[0].jetstream().key_value(subjects.SLOTS_BUCKET)
    async with runtimes[0].slot(agent, 1, "default"):
        taken = (await kv.get(f"{agent}.0")).revision
    async with runtimes[0].slot(agent, 1, "default"):
        entry = await kv.get(f"{agent}.0")
        assert (entry.value, entry.revision) == (b"runtime-0", taken)  # no write: a spare


async def test_a_spare_slot_is_freed_in_the_bucket_when_its_time_is_up(
    runtimes: list[Capacity], connections: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await _left_spare(runtimes[0], monkeypatch, 0.05)
    assert await _holder(connections[0], f"{agent}.0") == b"runtime-0"
    for _ in range(100):
        if await _holder(connections[0], f"{agent}.0") == b"":
            break
        await asyncio.sleep(0.02)
    assert await _holder(connections[0], f"{agent}.0") == b""  # freed, not only let go here


async def test_another_runtime_gets_a_spare_slot_at_once(
    runtimes: list[Capacity], connections: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await _left_spare(runtimes[0], monkeypatch, 60.0)
    async with asyncio.timeout(1), runtimes[1].slot(agent, 1, "default"):
        assert await _holder(connections[0], f"{agent}.0") == b"runtime-1"
        # Given up, not shared: the first runtime's next turn waits for this one.
        with pytest.raises(RuntimeFault) as busy:
            runtimes[0].queue_timeout = 0.2
            async with runtimes[0].slot(agent, 1, "default"):
                pass
        assert busy.value.code == "RATE_LIMITED"


async def test_a_stopping_runtime_frees_its_spare_slots(
    runtimes: list[Capacity], connections: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await _left_spare(runtimes[0], monkeypatch, 60.0)
    await runtimes[0].stop()
    assert await _holder(connections[0], f"{agent}.0") == b""
