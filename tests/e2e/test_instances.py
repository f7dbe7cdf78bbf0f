"""Instances through the edge: concurrency slots, a bounded queue with 429s, scale to zero and
a cold start, and the per-agent metrics projected from the events.

This module runs its own stack with a short queue timeout, a queue of one and a one-second
idle timeout.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from tests_support import edge_client, stream_events

from parley.devstack.stack import Stack


class Gate:
    """A local page the http_request tool fetches; holds every request until opened."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.arrived = 0
        app = web.Application()
        app.router.add_get("/{name}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        self.url = ""

    async def start(self) -> "Gate":
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/held"
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived += 1
        await self.open.wait()
        return web.json_response({"ok": True})


@pytest.fixture(scope="module")
async def gate() -> AsyncIterator[Gate]:
    server = await Gate().start()
    yield server
    server.open.set()
    await server._runner.cleanup()


@pytest.fixture(scope="module")
async def small_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    env = {
        "PARLEY_QUEUE_TIMEOUT": "0.5",
        "PARLEY_QUEUE_LIMIT": "1",
        "PARLEY_IDLE_TIMEOUT": "1",
    }
    stack = Stack(tmp_path_factory.mktemp("instances"), env=env)
    await asyncio.to_thread(stack.start)
    yield stack
    await asyncio.to_thread(stack.stop)


@pytest.fixture
async def http(small_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(small_stack, timeout=20) as client:
        yield client


async def agent(http: httpx.AsyncClient, instances: int) -> str:
    body: dict[str, Any] = {
        "name": f"inst-{uuid.uuid4().hex[:8]}",
        "instances": instances,
        "tools": [{"name": "http_request", "config": {"allowed_hosts": ["127.0.0.1"]}}],
    }
    created = await http.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    agent_id = created.json()["data"]["id"]
    assert (await http.post(f"/api/v1/agents/{agent_id}/start")).status_code == 200
    return agent_id


def held_message(gate: Gate) -> str:
    return f"call http_request({json.dumps({'url': gate.url})})"


async def wait_arrived(gate: Gate, count: int) -> None:
    for _ in range(200):
        if gate.arrived >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"only {gate.arrived} of {count} requests reached the gate")


async def test_one_instance_serves_one_turn_then_queues_then_refuses(http, gate: Gate):
    gate.open.clear()
    gate.arrived = 0
    agent_id = await agent(http, instances=1)
    path = f"/api/v1/agents/{agent_id}/chat"
    busy = asyncio.create_task(http.post(path, json={"message": held_message(gate)}))
    await wait_arrived(gate, 1)
    queued = asyncio.create_task(http.post(path, json={"message": "waiting"}))
    await asyncio.sleep(0.1)
    overflow = await http.post(path, json={"message": "one too many"})
    assert overflow.status_code == 429, overflow.text
    assert overflow.json()["error"]["code"] == "RATE_LIMITED"
    assert "already queued" in overflow.json()["error"]["message"]
    timed_out = await queued  # waited the queue timeout, the slot stayed busy
    assert timed_out.status_code == 429
    assert "stayed busy" in timed_out.json()["error"]["message"]
    gate.open.set()
    assert (await busy).status_code == 200
    after = await http.post(path, json={"message": "my turn"})
    assert after.status_code == 200, after.text


async def test_two_instances_serve_two_turns_at_once(http, gate: Gate):
    gate.open.clear()
    gate.arrived = 0
    agent_id = await agent(http, instances=2)
    path = f"/api/v1/agents/{agent_id}/chat"
    turns = [
        asyncio.create_task(http.post(path, json={"message": held_message(gate)})) for _ in range(2)
    ]
    await wait_arrived(gate, 2)  # both are inside their tool call at the same time
    gate.open.set()
    assert [(await t).status_code for t in turns] == [200, 200]


async def test_zero_instances_refuse_with_a_reason(http):
    agent_id = await agent(http, instances=0)
    response = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
    assert response.status_code == 429
    assert "0 instances" in response.json()["error"]["message"]


async def test_an_idle_agent_scales_to_zero_and_cold_starts_again(http, small_stack: Stack):
    agent_id = await agent(http, instances=1)
    path = f"/api/v1/agents/{agent_id}/chat"
    assert (await http.post(path, json={"message": "wake up"})).status_code == 200
    for _ in range(60):
        events = await stream_events(small_stack, f"instance-{agent_id}")
        if [e.type for e in events] == ["instance.started", "instance.stopped"]:
            break
        await asyncio.sleep(0.1)
    assert [e.type for e in events] == ["instance.started", "instance.stopped"]
    assert "idle" in events[1].data["reason"]
    metrics = (await http.get(f"/api/v1/metrics/agents/{agent_id}")).json()["data"]
    assert metrics["instances"]["count"] == 0
    assert (await http.post(path, json={"message": "again"})).status_code == 200
    events = await stream_events(small_stack, f"instance-{agent_id}")
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
