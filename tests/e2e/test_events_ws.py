"""Event subscriptions over the `/ws` WebSocket, through the real edge."""

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats
import pytest
from e2e_support import HubCheck
from e2e_support import act
from e2e_support import new_agent
from tests_support import auth_headers
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect


def _ws_url(stack: Any) -> str:
    return stack.edge_url.replace("http://", "ws://", 1) + "/ws"


async def _publish(client: httpx.AsyncClient, topic: str, event_type: str, **data: Any) -> dict:
    body = {"type": event_type, "subject": topic, "data": data}
    response = await client.post("/api/v1/events", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def _until(
    ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Frames received until ``done(frames)`` holds, within a deadline."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not done(frames):
            frames.append(json.loads(await ws.recv()))
    return frames


async def _subscribe(ws: ClientConnection, sub_id: str, **fields: Any) -> dict[str, Any]:
    await _send(ws, {"type": "subscribe", "id": sub_id, **fields})
    reply = await _recv(ws)
    assert reply["type"] == "subscribed" and reply["id"] == sub_id, reply
    return reply


def _events(frames: list[dict[str, Any]], sub_id: str) -> list[dict[str, Any]]:
    return [f["event"] for f in frames if f["type"] == "event" and f["subscription"] == sub_id]


async def test_a_subscriber_receives_an_agents_lifecycle_in_position_order(stack, client) -> None:
    agent = await new_agent(client, "ws", actions=())
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
        reply = await _subscribe(
            ws, "life", filter={"types": ["agent.*"], "agent_ids": [agent]}, from_position=0
        )
        assert reply["position"] == 0
        for action in ("start", "pause", "resume", "stop"):
            await act(client, agent, action)
        frames = await _until(ws, lambda f: len(_events(f, "life")) == 5)

    events = _events(frames, "life")
    assert [e["type"] for e in events] == ["agent.created"] + ["agent.state_changed"] * 4
    assert [e["data"]["to_state"] for e in events[1:]] == [
        "running",
        "paused",
        "running",
        "stopped",
    ]
    assert {e["subject"] for e in events} == {agent}
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))


async def test_two_subscriptions_on_one_socket_each_get_their_own_events(stack, client) -> None:
    agent = await new_agent(client, "ws", actions=())
    topic = f"ws-two-{uuid.uuid4().hex[:8]}"
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
        await _subscribe(
            ws, "agents", filter={"types": ["agent.state_changed"], "agent_ids": [agent]}
        )
        await _subscribe(
            ws, "custom", filter={"types": ["custom.*"], "streams": [f"custom-{topic}"]}
        )
        await act(client, agent, "start")
        posted = await _publish(client, topic, "custom.bell_rang", loud=True)
        frames = await _until(
            ws, lambda f: len(_events(f, "agents")) >= 1 and len(_events(f, "custom")) >= 1
        )

    [changed] = _events(frames, "agents")
    [custom] = _events(frames, "custom")
    assert changed["type"] == "agent.state_changed" and changed["subject"] == agent
    assert custom == posted


async def test_unsubscribing_stops_delivery_to_that_subscription(stack, client) -> None:
    topic = f"ws-unsub-{uuid.uuid4().hex[:8]}"
    only_topic = {"streams": [f"custom-{topic}"]}
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
        await _subscribe(ws, "first", filter=only_topic)
        one = await _publish(client, topic, "custom.tick_sent", n=1)
        frames = await _until(ws, lambda f: len(_events(f, "first")) == 1)
        assert _events(frames, "first")[0]["id"] == one["id"]

        await _send(ws, {"type": "unsubscribe", "id": "first"})
        assert await _recv(ws) == {"type": "unsubscribed", "id": "first"}
        two = await _publish(client, topic, "custom.tick_sent", n=2)
        # A second subscription from `one` proves `two` is stored and deliverable; the
        # unsubscribed one must stay silent throughout.
        await _subscribe(ws, "second", filter=only_topic, from_position=one["position"])
        three = await _publish(client, topic, "custom.tick_sent", n=3)
        after = await _until(ws, lambda f: len(_events(f, "second")) == 2)

    assert [e["id"] for e in _events(after, "second")] == [two["id"], three["id"]]
    assert _events(after, "first") == []


@pytest.mark.parametrize("field", ["from_position", "resume_from"])
async def test_a_subscriber_resumes_after_a_position_without_gaps_or_repeats(
    stack, client, field
) -> None:
    topic = f"ws-resume-{uuid.uuid4().hex[:8]}"
    posted = [await _publish(client, topic, "custom.step_done", n=n) for n in range(4)]
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
        reply = await _subscribe(
            ws, "again", filter={"streams": [f"custom-{topic}"]}, **{field: posted[1]["position"]}
        )
        assert reply["position"] == posted[1]["position"]
        frames = await _until(ws, lambda f: len(_events(f, "again")) == 2)
        late = await _publish(client, topic, "custom.step_done", n=4)
        frames += await _until(ws, lambda f: len(_events(f, "again")) == 1)

    assert [e["id"] for e in _events(frames, "again")] == [
        posted[2]["id"],
        posted[3]["id"],
        late["id"],
    ]


@pytest.mark.parametrize(
    ("message", "sub_id"),
    [
        ("this is not json", None),
        (b"\xff\xfe", None),
        ("[1, 2]", None),
        ('{"type": "shout"}', None),
        ('{"type": "subscribe"}', None),
        ('{"type": "subscribe", "id": "a", "filter": {"types": ["Agent.*"]}}', "a"),
        ('{"type": "subscribe", "id": "b", "filter": {"colours": ["red"]}}', "b"),
        ('{"type": "subscribe", "id": "c", "from_position": -1}', "c"),
        ('{"type": "unsubscribe", "id": "nobody"}', "nobody"),
        ("[" * 100_000 + "]" * 100_000, None),
    ],
    ids=[
        "not JSON",
        "invalid UTF-8",
        "not an object",
        "unknown type",
        "subscribe without id",
        "bad type pattern",
        "unknown filter field",
        "negative position",
        "unknown subscription",
        "deep nesting",
    ],
)
async def test_a_bad_message_gets_an_error_frame_and_the_socket_stays_open(
    stack, message, sub_id
) -> None:
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack), max_size=None) as ws:
        await ws.send(message)
        error = await _recv(ws)
        assert error["type"] == "error", error
        assert error["code"] == "INVALID_REQUEST"
        assert error["message"]
        assert error["id"] == sub_id

        await _send(ws, {"type": "ping"})
        assert (await _recv(ws))["type"] == "pong"


async def test_a_duplicate_subscription_id_is_refused_and_the_first_keeps_working(
    stack, client
) -> None:
    topic = f"ws-dup-{uuid.uuid4().hex[:8]}"
    async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
        await _subscribe(ws, "same", filter={"streams": [f"custom-{topic}"]})
        await _send(ws, {"type": "subscribe", "id": "same"})
        error = await _recv(ws)
        assert (error["type"], error["code"], error["id"]) == ("error", "INVALID_REQUEST", "same")

        posted = await _publish(client, topic, "custom.still_here")
        frames = await _until(ws, lambda f: len(_events(f, "same")) == 1)
    assert _events(frames, "same") == [posted]


async def test_closing_the_socket_releases_every_store_subscription(stack, client) -> None:
    topic = f"ws-leak-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(stack.nats_url)
    try:
        async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
            await _subscribe(ws, "first")  # the edge's shared feed exists from then on
        hub = await HubCheck.start(client, nc)
        async with connect(_ws_url(stack), additional_headers=auth_headers(stack)) as ws:
            for n in range(3):
                await _subscribe(ws, f"s{n}", filter={"streams": [f"custom-{topic}"]})
            await _publish(client, topic, "custom.hello_said")
            await _until(ws, lambda f: all(_events(f, f"s{n}") for n in range(3)))
            await hub.serving(3)
        await hub.released()
    finally:
        await nc.close()
