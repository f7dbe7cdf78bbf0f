"""Instances through the edge: concurrency slots, a bounded queue with 429s, scale to zero and
a cold start, and the per-agent metrics projected from the events.

This module runs its own stack with a short queue timeout, a queue of one and a one-second
idle timeout.
"""

import asyncio
import uuid

import httpx
import pytest
from e2e_support import World
from e2e_support import call
from e2e_support import new_agent
from e2e_support import web_tools
from tests_support import eventually
from tests_support import stream_events

from parley.contracts.envelope import Event
from parley.devstack.stack import Stack


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {
        "PARLEY_QUEUE_TIMEOUT": "0.5",
        "PARLEY_QUEUE_LIMIT": "1",
        "PARLEY_IDLE_TIMEOUT": "1",
    }


async def agent(http: httpx.AsyncClient, instances: int) -> str:
    return await new_agent(http, "inst", instances=instances, **web_tools())


def held_message(world: World) -> tuple[str, str]:
    """A fresh slow path of the world, and a message whose tool call waits there."""
    name = f"slow-{uuid.uuid4().hex[:8]}"
    return name, call("http_request", url=world.url(name))


async def wait_arrived(world: World, name: str, count: int) -> None:
    async def arrived() -> bool:
        return world.hits.get(name, 0) >= count

    await eventually(arrived, within=5)


async def test_one_instance_serves_one_turn_then_queues_then_refuses(http, world: World):
    world.reset()
    agent_id = await agent(http, instances=1)
    path = f"/api/v1/agents/{agent_id}/chat"
    slow, message = held_message(world)
    busy = asyncio.create_task(http.post(path, json={"message": message}))
    await wait_arrived(world, slow, 1)
    queued = asyncio.create_task(http.post(path, json={"message": "waiting"}))
    await asyncio.sleep(0.1)
    overflow = await http.post(path, json={"message": "one too many"})
    assert overflow.status_code == 429, overflow.text
    assert overflow.json()["error"]["code"] == "RATE_LIMITED"
    assert "already queued" in overflow.json()["error"]["message"]
    timed_out = await queued  # waited the queue timeout, the slot stayed busy
    assert timed_out.status_code == 429
    assert "stayed busy" in timed_out.json()["error"]["message"]
    world.release.set()
    assert (await busy).status_code == 200
    after = await http.post(path, json={"message": "my turn"})
    assert after.status_code == 200, after.text


async def test_two_instances_serve_two_turns_at_once(http, world: World):
    world.reset()
    agent_id = await agent(http, instances=2)
    path = f"/api/v1/agents/{agent_id}/chat"
    slow, message = held_message(world)
    turns = [asyncio.create_task(http.post(path, json={"message": message})) for _ in range(2)]
    await wait_arrived(world, slow, 2)  # both are inside their tool call at the same time
    world.release.set()
    assert [(await t).status_code for t in turns] == [200, 200]


async def test_zero_instances_refuse_with_a_reason(http):
    agent_id = await agent(http, instances=0)
    response = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
    assert response.status_code == 429
    assert "0 instances" in response.json()["error"]["message"]


async def test_an_idle_agent_scales_to_zero_and_cold_starts_again(http, own_stack: Stack):
    agent_id = await agent(http, instances=1)
    path = f"/api/v1/agents/{agent_id}/chat"
    assert (await http.post(path, json={"message": "wake up"})).status_code == 200

    async def stopped() -> list[Event] | None:
        events = await stream_events(own_stack, f"instance-{agent_id}")
        done = [e.type for e in events] == ["instance.started", "instance.stopped"]
        return events if done else None

    events = await eventually(stopped, within=10)
    assert "idle" in events[1].data["reason"]
    metrics = (await http.get(f"/api/v1/metrics/agents/{agent_id}")).json()["data"]
    assert metrics["instances"]["count"] == 0
    assert (await http.post(path, json={"message": "again"})).status_code == 200
    events = await stream_events(own_stack, f"instance-{agent_id}")
    assert [e.type for e in events][-1] == "instance.started"  # a cold start
    metrics = (await http.get(f"/api/v1/metrics/agents/{agent_id}")).json()["data"]
    assert metrics["instances"]["cold_starts"] == 2


async def test_metrics_are_projected_from_the_events(http):
    agent_id = await agent(http, instances=1)
    path = f"/api/v1/agents/{agent_id}/chat"
    first = (await http.post(path, json={"message": "one"})).json()["data"]
    await http.post(path, json={"message": "two", "conversation_id": first["conversation_id"]})
    await http.post(path, json={"message": "three"})
    metrics = (await http.get(f"/api/v1/metrics/agents/{agent_id}")).json()["data"]
    assert metrics["total_requests"] == 3
    assert metrics["success_rate"] == 1.0
    assert metrics["active_conversations"] == 2
    assert metrics["average_response_time_ms"] > 0
    assert metrics["tokens"]["input"] + metrics["tokens"]["output"] > 0
