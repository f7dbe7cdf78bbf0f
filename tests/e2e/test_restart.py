"""A restart keeps every agent: state is rebuilt from the events in the store."""

import asyncio

import httpx
import pytest
from e2e_support import all_agents
from tests_support import edge_client

from parley.devstack.stack import Stack

AGENTS = 100


async def _create_fleet(http: httpx.AsyncClient) -> None:
    semaphore = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with semaphore:
            created = await http.post("/api/v1/agents", json={"name": f"restart-{i:03d}"})
            assert created.status_code == 201, created.text
            agent_id = created.json()["data"]["id"]
            actions = [["start"], ["start", "pause"], ["stop"], []][i % 4]
            for action in actions:
                moved = await http.post(f"/api/v1/agents/{agent_id}/{action}")
                assert moved.status_code == 200, moved.text

    await asyncio.gather(*(one(i) for i in range(AGENTS)))


@pytest.mark.timeout(180)
async def test_every_agent_and_its_state_survive_a_restart_of_the_stack(tmp_path) -> None:
    first = Stack(tmp_path)
    await asyncio.to_thread(first.start)
    try:
        async with edge_client(first, timeout=10) as http:
            await _create_fleet(http)
            before = await all_agents(http, limit=50)
    finally:
        await asyncio.to_thread(first.stop)
    assert len(before) == AGENTS
    assert {a["state"] for a in before.values()} == {"created", "running", "paused", "stopped"}

    second = Stack(tmp_path)  # same state dir, new ports, new processes
    await asyncio.to_thread(second.start)
    try:
        async with edge_client(second, timeout=10) as http:
            after = await all_agents(http, limit=50)
    finally:
        await asyncio.to_thread(second.stop)

    assert after.keys() == before.keys()
    for agent_id, agent in before.items():
        assert after[agent_id]["state"] == agent["state"]
        assert after[agent_id]["version"] == agent["version"]
        assert after[agent_id]["spec"] == agent["spec"]
