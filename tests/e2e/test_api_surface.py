"""The API surface seed users meet on their first calls, through the real stack: unknown query
parameters are refused (not dropped), validation errors have one shape, enums take any case,
an agent shows its name, status and capabilities at the top level, and `/agents/{id}/stream`
streams a chat like `/chat/stream`."""

import json
from typing import Any

import httpx
import pytest
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from httpx_sse import aconnect_sse
from tests_support import auth_headers
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from parley.devstack.stack import Stack


def _unknown(response: httpx.Response, *names: str) -> dict:
    error = error_of(response, 400, "INVALID_REQUEST")
    assert [e["field"] for e in error["details"]["errors"]] == [f"query.{n}" for n in names]
    for name in names:
        assert name in error["message"]
    return error


async def test_an_unknown_filter_is_refused_naming_the_accepted_ones(api: httpx.AsyncClient):
    refused = await api.get("/api/v1/agents", params={"status": "running", "cluster": "X"})
    error = _unknown(refused, "cluster")
    assert {"state", "status", "capability", "label", "limit", "cursor"} <= set(
        error["details"]["accepted"]
    )
    assert "state" in error["message"] and "capability" in error["message"]


async def test_status_is_an_alias_of_state(api: httpx.AsyncClient):
    running = await new_agent(api, "run")
    await new_agent(api, "idle", actions=())
    for params in ({"status": "running"}, {"state": "running"}):
        page = body_of(await api.get("/api/v1/agents", params=params))
        assert [a["id"] for a in page["data"]] == [running], params


async def test_a_query_parameter_a_route_does_not_take_is_refused_before_it_acts(
    api: httpx.AsyncClient,
):
    agent = await new_agent(api, "to")
    sent = await api.post(
        "/api/v1/messages",
        params={"wait": "10"},
        json={"performative": "inform", "receivers": [agent], "content": "hi"},
    )
    _unknown(sent, "wait")
    listed = body_of(await api.get("/api/v1/messages", params={"agent_id": agent}))
    assert listed["data"] == []


@pytest.mark.parametrize("param", ["page", "perPage", "offset"])
async def test_offset_paging_is_refused_with_how_cursors_work(api: httpx.AsyncClient, param: str):
    error = _unknown(await api.get("/api/v1/agents", params={param: "2"}), param)
    assert "cursor" in error["message"] and "next_cursor" in error["message"]


async def test_the_namespace_query_parameter_is_taken_everywhere(client: httpx.AsyncClient):
    page = await client.get("/api/v1/agents", params={"namespace": "default", "limit": 1})
    assert body_of(page)["pagination"]["limit"] == 1
    assert (await client.get("/api/v1/models", params={"namespace": "default"})).status_code == 200
    _unknown(await client.get("/api/v1/models", params={"colour": "red"}), "colour")


async def test_the_event_stream_refuses_an_unknown_filter(client: httpx.AsyncClient):
    _unknown(await client.get("/api/v1/events", params={"agent": "x"}), "agent")


async def test_body_and_query_validation_errors_have_one_documented_shape(
    api: httpx.AsyncClient,
):
    body = error_of(await api.post("/api/v1/agents", json={"name": 5}), 422, "VALIDATION_ERROR")
    assert body["details"]["errors"][0]["field"] == "body.name"
    assert body["details"]["errors"][0]["message"]
    query = error_of(await api.get("/api/v1/agents", params={"limit": 0}), 422, "VALIDATION_ERROR")
    assert [e["field"] for e in query["details"]["errors"]] == ["query.limit"], query
    state = error_of(
        await api.get("/api/v1/agents", params={"state": "asleep"}), 422, "VALIDATION_ERROR"
    )
    assert state["details"]["errors"][0]["field"] == "query.state"


async def test_enum_query_values_take_any_case(api: httpx.AsyncClient):
    running = await new_agent(api, "loud")
    page = body_of(await api.get("/api/v1/agents", params={"state": "RUNNING"}))
    assert [a["id"] for a in page["data"]] == [running]
    quiet = await new_agent(api, "quiet", actions=())
    page = body_of(await api.get("/api/v1/agents", params={"sort": "name:DESC"}))
    assert [a["id"] for a in page["data"]] == [quiet, running]
    logs = await api.get(f"/api/v1/agents/{running}/logs", params={"level": "INFO"})
    assert isinstance(body_of(logs)["data"], list)
    tools = await api.get("/api/v1/tools", params={"category": "Web"})
    assert body_of(tools)["data"]


async def test_an_agent_shows_name_status_and_capabilities_at_the_top_level(
    api: httpx.AsyncClient,
):
    created = await api.post(
        "/api/v1/agents", json={"name": "topside", "capabilities": ["search", "summarise"]}
    )
    agent = body_of(created, 201)["data"]
    assert agent["name"] == agent["spec"]["name"] == "topside"
    assert agent["status"] == agent["state"] == "created"
    assert agent["capabilities"] == ["search", "summarise"]
    body_of(await api.post(f"/api/v1/agents/{agent['id']}/start"))
    read = body_of(await api.get(f"/api/v1/agents/{agent['id']}"))["data"]
    assert (read["name"], read["status"], read["capabilities"]) == (
        "topside",
        "running",
        ["search", "summarise"],
    )
    [listed] = body_of(await api.get("/api/v1/agents"))["data"]
    assert listed["status"] == "running" and listed["name"] == "topside"


async def _frames(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> list[Any]:
    async with aconnect_sse(api, method, path, **kwargs) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [sse async for sse in source.aiter_sse()]


async def test_agents_stream_is_the_chat_stream(api: httpx.AsyncClient):
    path = f"/api/v1/agents/{await new_agent(api, 'streamer')}/stream"
    frames = await _frames(api, "POST", path, json={"message": "alias"})
    assert frames[0].event == "start" and frames[-1].event == "end"
    assert json.loads(frames[-1].data)["response"] == "echo: alias"
    resume = {"turn_id": json.loads(frames[0].data)["turn_id"], "last_event_id": frames[1].id}
    replayed = await _frames(api, "GET", path, params=resume)
    assert [f.id for f in replayed] == [f.id for f in frames[2:]]


async def test_a_websocket_with_an_unknown_query_parameter_is_refused(stack: Stack):
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    with pytest.raises(InvalidStatus):
        async with connect(url + "?topic=agents", additional_headers=auth_headers(stack)):
            pass
    async with connect(url + "?namespace=default", additional_headers=auth_headers(stack)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "s"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
