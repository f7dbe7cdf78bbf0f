"""The event stream over Server-Sent Events, and custom events, through the real edge."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from e2e_support import HubCheck
from e2e_support import act
from e2e_support import new_agent
from httpx_sse import ServerSentEvent
from httpx_sse import aconnect_sse

EVENTS = "/api/v1/events"
STREAM_TIMEOUT = httpx.Timeout(10, read=60)  # keep-alives come every 15 s


async def _publish(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict:
    response = await client.post(EVENTS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _take(events: AsyncIterator[ServerSentEvent], count: int) -> list[ServerSentEvent]:
    """The next ``count`` events of a stream, within a deadline."""
    taken: list[ServerSentEvent] = []
    async with asyncio.timeout(10):
        while len(taken) < count:
            taken.append(await anext(events))
    return taken


def _assert_well_formed(received: list[ServerSentEvent]) -> list[dict]:
    """Each message's id is its event's position and its name the event's type."""
    envelopes = [message.json() for message in received]
    for message, envelope in zip(received, envelopes, strict=True):
        assert message.id == str(envelope["position"])
        assert message.event == envelope["type"]
        for attribute in ("id", "source", "specversion", "time", "stream", "version"):
            assert attribute in envelope
    positions = [e["position"] for e in envelopes]
    assert positions == sorted(set(positions)), "positions must strictly increase"
    return envelopes


async def test_a_client_filtered_to_one_agent_receives_its_lifecycle_in_order(client) -> None:
    agent = await new_agent(client, "sse", actions=())
    other = await new_agent(client, "sse", actions=())
    params = {"type": "agent.*", "agent_id": agent, "from_position": "0"}
    async with aconnect_sse(client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT) as sse:
        events = sse.aiter_sse()
        created = await _take(events, 1)
        await act(client, other, "start")
        for action in ("start", "pause", "resume", "stop"):
            await act(client, agent, action)
        changes = await _take(events, 4)

    envelopes = _assert_well_formed(created + changes)
    assert [e["type"] for e in envelopes] == ["agent.created"] + ["agent.state_changed"] * 4
    assert {e["subject"] for e in envelopes} == {agent}
    assert [e["data"]["to_state"] for e in envelopes[1:]] == [
        "running",
        "paused",
        "running",
        "stopped",
    ]


async def test_a_client_that_reconnects_with_last_event_id_gets_exactly_the_missed_events(
    client,
) -> None:
    agent = await new_agent(client, "sse", actions=())
    params = {"type": "agent.*", "agent_id": agent, "from_position": "0"}
    async with aconnect_sse(client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT) as sse:
        [created] = await _take(sse.aiter_sse(), 1)

    await act(client, agent, "start")  # missed while disconnected
    await act(client, agent, "pause")
    resume = {"Last-Event-ID": created.id}
    async with aconnect_sse(
        client, "GET", EVENTS, params=params, headers=resume, timeout=STREAM_TIMEOUT
    ) as sse:
        events = sse.aiter_sse()
        missed = await _take(events, 2)
        await act(client, agent, "resume")
        [live] = await _take(events, 1)

    envelopes = _assert_well_formed([created, *missed, live])
    assert [e["data"]["to_state"] for e in envelopes[1:]] == ["running", "paused", "running"]
    assert int(missed[0].id) > int(created.id)


async def test_a_stream_without_a_start_position_delivers_only_new_events(client) -> None:
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    before = await _publish(client, {"type": "custom.order_placed", "subject": topic, "data": {}})
    params = {"type": "custom.*", "stream": f"custom-{topic}"}
    async with aconnect_sse(client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT) as sse:
        posted = await _publish(
            client,
            {"type": "custom.order_shipped", "subject": topic, "data": {"carrier": "owl"}},
        )
        [received] = await _take(sse.aiter_sse(), 1)

    assert before["position"] < posted["position"]
    assert received.id == str(posted["position"])
    assert received.event == "custom.order_shipped"
    assert received.json() == posted


async def test_a_posted_custom_event_is_recorded_and_appears_on_the_stream(client) -> None:
    topic = f"door-{uuid.uuid4().hex[:8]}"
    params = {"type": "custom.door_*", "namespace": "default"}
    async with aconnect_sse(client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT) as sse:
        await _publish(client, {"type": "custom.window_opened", "subject": topic, "data": {}})
        posted = await _publish(
            client, {"type": "custom.door_opened", "subject": topic, "data": {"by": "ada"}}
        )
        [received] = await _take(sse.aiter_sse(), 1)

    assert posted["type"] == "custom.door_opened"
    assert posted["subject"] == topic
    assert posted["stream"] == f"custom-{topic}"
    assert posted["data"] == {"by": "ada"}
    assert posted["namespace"] == "default"
    assert posted["version"] >= 1 and posted["position"] > 0
    assert received.json() == posted


async def test_a_retried_post_with_the_same_idempotency_key_appends_once(client) -> None:
    topic = f"pay-{uuid.uuid4().hex[:8]}"
    body = {"type": "custom.payment_taken", "subject": topic, "data": {"amount": 5}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await _publish(client, body, **key)
    retry = await _publish(client, body, **key)
    later = await _publish(client, {**body, "data": {"amount": 6}})

    assert retry == first
    params = {"stream": f"custom-{topic}", "from_position": "0"}
    async with aconnect_sse(client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT) as sse:
        received = await _take(sse.aiter_sse(), 2)
    assert [m.json()["id"] for m in received] == [first["id"], later["id"]]
    assert [m.json()["version"] for m in received] == [1, 2]


@pytest.mark.parametrize(
    "event_type", ["agent.created", "task.awarded", "budget.warning", "agent_name.claimed"]
)
async def test_a_custom_event_with_a_reserved_type_is_refused(client, event_type) -> None:
    response = await client.post(EVENTS, json={"type": event_type, "subject": "x", "data": {}})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "reserved" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Not.A.Type", "subject": "x"},
        {"type": "nodots", "subject": "x"},
        {"subject": "x"},
        {"type": "custom.ok", "subject": "x", "data": [1]},
        {"type": "custom.ok", "subject": "x", "colour": "red"},
    ],
    ids=["uppercase type", "undotted type", "missing type", "data not an object", "unknown"],
)
async def test_an_invalid_custom_event_is_a_validation_error(client, body) -> None:
    response = await client.post(EVENTS, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "custom.x",', b'{"type": "custom.\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["malformed JSON", "invalid UTF-8", "deep nesting"],
)
async def test_an_unreadable_body_is_a_400_never_a_500(client, raw) -> None:
    response = await client.post(EVENTS, content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"type": "Agent.*"}, {}),
        ({"type": "agent..created"}, {}),
        ({"type": "agent.[a-z]"}, {}),
        ({"stream": "not a stream"}, {}),
        ({"namespace": "Not_A_Namespace"}, {}),
        ({"from_position": "-1"}, {}),
        ({"from_position": "soon"}, {}),
        ({}, {"Last-Event-ID": "yesterday"}),
    ],
    ids=[
        "uppercase type",
        "empty segment",
        "character class",
        "bad stream",
        "bad namespace",
        "negative position",
        "non-numeric position",
        "non-numeric Last-Event-ID",
    ],
)
async def test_an_invalid_filter_is_a_400_envelope_not_a_stream(client, params, headers) -> None:
    response = await client.get(EVENTS, params=params, headers=headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["message"]
    assert "request_id" in error


async def test_a_disconnected_client_leaves_no_store_subscription_behind(client, stack) -> None:
    topic = f"leak-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(stack.nats_url)
    try:
        async with aconnect_sse(client, "GET", EVENTS, timeout=STREAM_TIMEOUT):
            pass  # the edge's shared feed exists from its first subscriber on
        hub = await HubCheck.start(client, nc)
        params = {"stream": f"custom-{topic}"}
        async with aconnect_sse(
            client, "GET", EVENTS, params=params, timeout=STREAM_TIMEOUT
        ) as sse:
            await _publish(client, {"type": "custom.ping_sent", "subject": topic})
            await _take(sse.aiter_sse(), 1)  # the subscription is live server-side
            await hub.serving(1)
        await hub.released()
    finally:
        await nc.close()
