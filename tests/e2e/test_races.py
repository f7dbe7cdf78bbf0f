"""Races and edges through the real stack: a rename that loses its race, concurrent
replays of one `Idempotency-Key`, inputs too large for an event, and `/ws` positions out of
range."""

import asyncio
import json
import uuid

import httpx
import pytest
from tests_support import auth_headers
from websockets.asyncio.client import connect

from parley.devstack.stack import Stack


async def _race_two_renames(api: httpx.AsyncClient, round_: int) -> list[str]:
    """Two renames of a new agent, both at version 1; the names that lost."""
    created = await api.post("/api/v1/agents", json={"name": f"contested-{round_}"})
    assert created.status_code == 201, created.text
    path = f"/api/v1/agents/{created.json()['data']['id']}"
    names = [f"rename-{round_}-{i}" for i in range(2)]
    renames = await asyncio.gather(
        *(api.patch(path, json={"name": name}, headers={"If-Match": '"1"'}) for name in names)
    )
    statuses = sorted(reply.status_code for reply in renames)
    assert statuses == [200, 409], [reply.text for reply in renames]
    won = (await api.get(path)).json()["data"]["spec"]["name"]
    assert won in names
    taken = await api.post("/api/v1/agents", json={"name": won})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "AGENT_ALREADY_EXISTS"
    return [name for name in names if name != won]


async def test_every_rename_that_loses_a_race_gives_its_name_back(api: httpx.AsyncClient) -> None:
    for round_ in range(8):
        for lost in await _race_two_renames(api, round_):
            taken = await api.post("/api/v1/agents", json={"name": lost})
            assert taken.status_code == 201, taken.text


async def test_concurrent_posts_with_one_idempotency_key_all_answer_the_first_reply(
    api: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    replies = await asyncio.gather(
        *(api.post("/api/v1/agents", json={"name": "once"}, headers=key) for _ in range(20))
    )
    first = [r for r in replies if "idempotent-replayed" not in r.headers]
    replays = [r for r in replies if r.headers.get("idempotent-replayed") == "true"]
    assert len(first) == 1 and len(replays) == 19, [r.status_code for r in replies]
    assert first[0].status_code == 201, first[0].text
    assert {r.status_code for r in replays} == {200}, [r.text for r in replays]
    assert all(r.json() == first[0].json() for r in replays)
    listed = await api.get("/api/v1/agents", params={"name": "once"})
    assert listed.json()["pagination"]["total_count"] == 1


@pytest.mark.parametrize("field", ["from_position", "resume_from"])
@pytest.mark.parametrize("position", [2**64, 2**70, 10**30])
async def test_a_ws_subscription_from_past_the_last_possible_position_is_refused(
    stack: Stack, field: str, position: int
) -> None:
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    async with connect(url, additional_headers=auth_headers(stack)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "far", field: position}))
        async with asyncio.timeout(10):
            refused = json.loads(await ws.recv())
        assert refused["type"] == "error" and refused["code"] == "INVALID_REQUEST", refused
        assert refused["id"] == "far" and field in refused["message"]
        await ws.send(json.dumps({"type": "subscribe", "id": "near", field: 2**64 - 1}))
        async with asyncio.timeout(10):
            accepted = json.loads(await ws.recv())
        assert accepted["type"] == "subscribed" and accepted["id"] == "near", accepted


async def _cluster(api: httpx.AsyncClient, agents: int) -> str:
    name = f"g-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {"agents": [{"name": f"a{i}"} for i in range(agents)], "strategy": "parallel"},
    }
    created = await api.post("/api/v1/clusters", json=manifest)
    assert created.status_code == 201, created.text
    return name


async def test_a_run_input_too_large_for_its_events_is_refused_up_front(
    api: httpx.AsyncClient,
) -> None:
    name = await _cluster(api, 2)
    refused = await api.post(f"/api/v1/clusters/{name}/runs", json={"input": "x" * 600_000})
    assert refused.status_code == 413, refused.text[:500]
    error = refused.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE" and "262144" in error["message"]
    assert error["details"]["limit"] == 262_144 and error["details"]["size"] > 600_000


async def test_a_run_whose_result_is_too_large_for_an_event_fails_saying_so(
    api: httpx.AsyncClient,
) -> None:
    name = await _cluster(api, 5)  # five echoes of 250 kB: over the 1 MiB an event holds
    body = {"input": "y" * 250_000, "timeout_seconds": 3600}
    started = await api.post(f"/api/v1/clusters/{name}/runs", json=body)
    assert started.status_code == 202, started.text[:500]
    path = f"/api/v1/clusters/{name}/runs/{started.json()['data']['run_id']}"
    view: dict = {}
    async with asyncio.timeout(90):
        while view.get("status") in (None, "running"):
            await asyncio.sleep(0.2)
            view = (await api.get(path)).json()["data"]
    assert view["status"] == "failed", (view["status"], view.get("error"))
    assert "bytes an event may hold" in view["error"], view["error"]
