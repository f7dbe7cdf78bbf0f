"""Agent chat through the real stack on the offline provider: sync, SSE, WebSocket, resume,
cancel, bad input; then the agent's logs, metrics and executions views."""

import json
from typing import Any

import httpx
import pytest
from e2e_support import new_agent
from httpx_sse import aconnect_sse
from tests_support import auth_headers
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect

from parley.devstack.stack import Stack


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


async def test_a_sync_chat_answers_with_the_turn(client):
    agent_id = await new_agent(client, "chat")
    response = await client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, timeout=30
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["response"] == "echo: hi" and data["outcome"] == "completed"
    assert set(data) >= {
        "response",
        "conversation_id",
        "turn_id",
        "tokens_used",
        "response_time_ms",
        "usage",
        "tool_calls",
        "outcome",
    }
    session = (await client.get(f"/api/v1/sessions/{data['conversation_id']}")).json()["data"]
    assert session["agent_id"] == agent_id and session["turn_count"] == 1


async def test_an_sse_chat_streams_numbered_frames_to_the_end(client):
    agent_id = await new_agent(client, "chat")
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    async with aconnect_sse(client, "POST", path, json={"message": "stream me"}) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        frames = [sse async for sse in source.aiter_sse()]
    kinds = [f.event for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "end" and "token" in kinds
    datas = [json.loads(f.data) for f in frames]
    turn_id = datas[0]["turn_id"]
    assert [f.id for f in frames] == [f"{turn_id}:{i}" for i in range(1, len(frames) + 1)]
    assert all(d["conversation_id"] == datas[0]["conversation_id"] for d in datas)
    text = "".join(d["text"] for f, d in zip(frames, datas, strict=True) if f.event == "token")
    assert text == datas[-1]["response"] == "echo: stream me"
    assert datas[-1]["outcome"] == "completed" and "usage" in datas[-1]


async def test_a_finished_stream_replays_from_last_event_id(client):
    agent_id = await new_agent(client, "chat")
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    async with aconnect_sse(client, "POST", path, json={"message": "once more"}) as source:
        frames = [sse async for sse in source.aiter_sse()]
    turn_id = json.loads(frames[0].data)["turn_id"]
    async with aconnect_sse(
        client, "GET", path, params={"turn_id": turn_id, "last_event_id": frames[1].id}
    ) as source:
        replayed = [sse async for sse in source.aiter_sse()]
    assert [f.id for f in replayed] == [f.id for f in frames[2:]]


async def test_stream_errors_before_the_turn_are_json_envelopes(client):
    idle = await new_agent(client, "chat", actions=())
    _error(
        await client.post(f"/api/v1/agents/{idle}/chat/stream", json={"message": "hi"}),
        409,
        "AGENT_NOT_RUNNING",
    )
    _error(
        await client.post("/api/v1/agents/nope/chat/stream", json={"message": "hi"}),
        404,
        "AGENT_NOT_FOUND",
    )
    _error(
        await client.post(f"/api/v1/agents/{idle}/chat/stream", json={"message": ""}),
        422,
        "VALIDATION_ERROR",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"message": ""}, 422, "VALIDATION_ERROR"),
        ({}, 422, "VALIDATION_ERROR"),
        ({"message": "x", "policy": "shove"}, 422, "VALIDATION_ERROR"),
        ({"message": "x", "context": []}, 422, "VALIDATION_ERROR"),
        ({"message": "x", "conversation_id": "no such"}, 422, "VALIDATION_ERROR"),
        ({"message": "x", "conversation_id": "x" * 65}, 422, "VALIDATION_ERROR"),
        ({"message": "x", "files": ["missing.txt"]}, 404, "FILE_NOT_FOUND"),
        ({"message": "x", "extra": 1}, 422, "VALIDATION_ERROR"),
        (b"{not json", 400, "INVALID_REQUEST"),
        (b"[" * 100_000, 400, "INVALID_REQUEST"),
    ],
)
async def test_bad_chat_bodies_get_the_error_envelope(client, body, status, code):
    agent_id = await new_agent(client, "chat")
    path = f"/api/v1/agents/{agent_id}/chat"
    if isinstance(body, bytes):
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await client.post(path, json=body)
    _error(response, status, code)


async def test_another_agents_conversation_is_refused(client):
    one, two = await new_agent(client, "chat"), await new_agent(client, "chat")
    first = await client.post(f"/api/v1/agents/{one}/chat", json={"message": "hi"}, timeout=30)
    conversation = first.json()["data"]["conversation_id"]
    response = await client.post(
        f"/api/v1/agents/{two}/chat", json={"message": "hi", "conversation_id": conversation}
    )
    assert "another agent" in _error(response, 400, "INVALID_REQUEST")["message"]


async def test_resume_needs_a_known_turn_and_a_valid_last_event_id(client):
    agent_id = await new_agent(client, "chat")
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    _error(await client.get(path, params={"turn_id": "nope"}), 404, "NOT_FOUND")
    _error(await client.get(path), 404, "NOT_FOUND")
    _error(
        await client.get(path, params={"turn_id": "t"}, headers={"Last-Event-ID": "x:y"}),
        400,
        "INVALID_REQUEST",
    )


async def test_cancel_without_a_running_turn_is_a_conflict(client):
    agent_id = await new_agent(client, "chat")
    _error(await client.post(f"/api/v1/agents/{agent_id}/cancel"), 409, "NO_ACTIVE_TURN")
    _error(
        await client.post(f"/api/v1/agents/{agent_id}/cancel", json={"turn_id": 5}),
        422,
        "VALIDATION_ERROR",
    )
    _error(await client.post("/api/v1/agents/nope/cancel"), 404, "AGENT_NOT_FOUND")


def _ws_url(stack: Stack, agent_id: str) -> str:
    return stack.edge_url.replace("http://", "ws://", 1) + f"/api/v1/agents/{agent_id}/ws"


async def _until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(await ws.recv())
        frames.append(frame)
        if frame["type"] in (kind, "error") and (frame["type"] == kind or "seq" not in frame):
            return frames


async def test_websocket_chat_streams_turns_and_keeps_the_conversation(client, stack: Stack):
    agent_id = await new_agent(client, "chat")
    async with connect(_ws_url(stack, agent_id), additional_headers=auth_headers(stack)) as ws:
        await ws.send(json.dumps({"type": "message", "message": "first"}))
        first = await _until(ws, "end")
        assert [f["seq"] for f in first] == list(range(1, len(first) + 1))
        assert first[-1]["data"]["response"] == "echo: first"
        conversation = first[0]["data"]["conversation_id"]
        await ws.send(json.dumps({"type": "message", "message": "second"}))
        second = await _until(ws, "end")
        assert second[-1]["data"]["conversation_id"] == conversation
        assert second[0]["turn_id"] != first[0]["turn_id"]
    session = (await client.get(f"/api/v1/sessions/{conversation}")).json()["data"]
    assert session["turn_count"] == 2


async def test_websocket_bad_frames_get_errors_and_the_socket_stays_open(client, stack: Stack):
    agent_id = await new_agent(client, "chat")
    async with connect(_ws_url(stack, agent_id), additional_headers=auth_headers(stack)) as ws:
        for bad in [
            "{nope",
            "[]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "message", "message": ""}),
            "[" * 50_000,
        ]:
            await ws.send(bad)
            frame = json.loads(await ws.recv())
            assert frame["type"] == "error", frame
            assert frame["data"]["code"] in ("INVALID_REQUEST", "VALIDATION_ERROR")
        await ws.send(json.dumps({"type": "cancel"}))
        frame = json.loads(await ws.recv())
        assert frame["data"]["code"] == "NO_ACTIVE_TURN"
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(await ws.recv()) == {"type": "pong", "id": "p"}


async def test_websocket_to_an_agent_not_running_refuses_the_message(client, stack: Stack):
    agent_id = await new_agent(client, "chat", actions=())
    async with connect(_ws_url(stack, agent_id), additional_headers=auth_headers(stack)) as ws:
        await ws.send(json.dumps({"type": "message", "message": "hi"}))
        frame = json.loads(await ws.recv())
        assert frame == {
            "type": "error",
            "data": {
                "code": "AGENT_NOT_RUNNING",
                "message": frame["data"]["message"],
                "details": frame["data"]["details"],
            },
        }


async def test_websocket_to_an_unknown_agent_says_so_and_closes(stack: Stack):
    async with connect(_ws_url(stack, "nope"), additional_headers=auth_headers(stack)) as ws:
        frame = json.loads(await ws.recv())
        assert frame["data"]["code"] == "AGENT_NOT_FOUND"
        await ws.wait_closed()
        assert ws.close_code == 1008


async def test_logs_and_metrics_follow_the_agents_turns(client):
    agent_id = await new_agent(client, "chat")
    for message in ("one", "two"):
        response = await client.post(
            f"/api/v1/agents/{agent_id}/chat", json={"message": message}, timeout=30
        )
        assert response.status_code == 200
    metrics = (await client.get(f"/api/v1/metrics/agents/{agent_id}")).json()["data"]
    assert metrics["total_requests"] == 2 and metrics["turns"] == 2
    assert metrics["success_rate"] == 1.0 and metrics["active_conversations"] == 2
    assert metrics["tokens"]["total"] > 0
    logs = (await client.get(f"/api/v1/agents/{agent_id}/logs")).json()["data"]
    finished = [e for e in logs if e["event_type"] == "turn.completed"]
    assert len(finished) == 2 and all(e["level"] == "info" for e in finished)
    assert (await client.get(f"/api/v1/agents/{agent_id}/logs", params={"level": "error"})).json()[
        "data"
    ] == []
    since = await client.get(
        f"/api/v1/agents/{agent_id}/logs", params={"since": "2999-01-01T00:00:00Z"}
    )
    assert since.json()["data"] == []
    _error(
        await client.get(f"/api/v1/agents/{agent_id}/logs", params={"level": "loud"}),
        422,
        "VALIDATION_ERROR",
    )
    _error(
        await client.get(f"/api/v1/agents/{agent_id}/logs", params={"since": "yesterday"}),
        422,
        "VALIDATION_ERROR",
    )
    _error(
        await client.get(f"/api/v1/agents/{agent_id}/logs", params={"limit": 1001}),
        422,
        "VALIDATION_ERROR",
    )
    _error(await client.get("/api/v1/metrics/agents/nope"), 404, "AGENT_NOT_FOUND")


async def test_execution_views_answer_404s_and_empty_lists(client):
    agent_id = await new_agent(client, "chat")
    base = f"/api/v1/agents/{agent_id}"
    listed = await client.get(f"{base}/executions")
    assert listed.status_code == 200 and listed.json()["data"] == []
    _error(await client.get(f"{base}/executions/nope"), 404, "EXECUTION_NOT_FOUND")
    _error(await client.post(f"{base}/executions/nope/cancel"), 404, "EXECUTION_NOT_FOUND")
    _error(await client.post(f"{base}/executions/nope/input", json={}), 404, "EXECUTION_NOT_FOUND")
    _error(await client.get(f"{base}/output"), 404, "EXECUTION_NOT_FOUND")
    _error(
        await client.get(f"{base}/executions", params={"status": "weird"}), 422, "VALIDATION_ERROR"
    )
    _error(await client.post(f"{base}/webhook", json={"input_data": []}), 422, "VALIDATION_ERROR")
    _error(
        await client.post(f"{base}/webhook", json={"execution_options": {"max_attempts": 0}}),
        422,
        "VALIDATION_ERROR",
    )
    _error(await client.post("/api/v1/agents/nope/webhook", json={}), 404, "AGENT_NOT_FOUND")
