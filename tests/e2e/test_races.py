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
