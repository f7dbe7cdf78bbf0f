"""FIPA-ACL messages through the real edge and messaging service: routing, delivery,
protocols, de-duplication, history, filtered event streams, send-and-wait, redelivery."""

import asyncio
import json
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import nats
from e2e_support import new_agent
from httpx_sse import aconnect_sse
from tests_support import auth_headers
from tests_support import stream_events
from websockets.asyncio.client import connect

from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageSent
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import NewEvent
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

MESSAGES = "/api/v1/messages"
STREAM_TIMEOUT = httpx.Timeout(10, read=60)


async def agent(client: httpx.AsyncClient, *, state: str | None = "running", **spec: Any) -> str:
    actions = {"running": ["start"], "paused": ["start", "pause"], "stopped": ["stop"]}
    return await new_agent(client, "msg", actions=actions.get(state or "", []), **spec)


async def send(client: httpx.AsyncClient, **message: Any) -> httpx.Response:
    headers = message.pop("headers", {})
    return await client.post(MESSAGES, json=message, headers=headers, timeout=30)


async def says(
    client: httpx.AsyncClient, sender: str, performative: str, receiver: str, **message: Any
) -> httpx.Response:
    """``user:<sender>`` sends a ``performative`` message to ``user:<receiver>``."""
    return await send(
        client,
        performative=performative,
        sender=f"user:{sender}",
        receivers=[f"user:{receiver}"],
        **message,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


async def test_a_direct_message_is_recorded_with_each_receivers_delivery(client, stack) -> None:
    receiver = await agent(client)
    response = await send(
        client,
        performative="inform",
        sender="user:alice",
        receivers=[receiver, "user:bob"],
        content={"note": "the build is green"},
        language="json",
        ontology="ci",
    )

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "delivered"
    assert data["delivered_to"] == [receiver]
    assert data["delivered_at"]
    assert response.headers["location"] == f"{MESSAGES}/{data['message_id']}"
    read = (await client.get(f"{MESSAGES}/{data['message_id']}")).json()["data"]
    assert read["sender"] == "user:alice"
    assert read["content"] == {"note": "the build is green"}
    assert read["conversation_id"] == data["conversation_id"]
    deliveries = {d["receiver"]: d["status"] for d in read["deliveries"]}
    assert deliveries["user:bob"] == "recorded"
    assert deliveries[receiver] in ("queued", "delivered")
    events = await stream_events(stack, conversation_stream("default", data["conversation_id"]))
    assert events[0].type == "message.sent"
    assert events[0].data["message"]["receivers"] == [receiver, "user:bob"]


async def test_capability_routing_picks_the_least_loaded_running_agent(client) -> None:
    skill = unique("skill")
    busy = await agent(client, capabilities=[skill])
    idle = await agent(client, capabilities=[skill])
    await agent(client, state="paused", capabilities=[skill])
    first = await send(client, performative="request", receivers=[busy], content="hello")
    assert first.status_code == 202, first.text

    routed = await send(client, performative="request", capability=skill, content="hi")

    assert routed.status_code == 202, routed.text
    assert routed.json()["data"]["delivered_to"] == [idle]


async def test_broadcast_reaches_every_running_agent_with_the_capability(client) -> None:
    skill = unique("skill")
    running = sorted([await agent(client, capabilities=[skill]) for _ in range(3)])
    paused = await agent(client, state="paused", capabilities=[skill])

    response = await send(
        client, performative="inform", capability=skill, broadcast=True, content="news"
    )

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert sorted(data["delivered_to"]) == running
    assert paused not in data["delivered_to"]


async def test_a_capability_nobody_running_has_is_a_clear_delivery_failure(client) -> None:
    skill = unique("skill")
    paused = await agent(client, state="paused", capabilities=[skill])

    response = await send(client, performative="request", capability=skill, content="x")

    assert response.status_code == 422, response.text
    body = error(response)
    assert body["code"] == "MESSAGE_DELIVERY_FAILED"
    assert skill in body["message"] and paused in body["message"]
    assert body["details"]["agents"] == [{"agent_id": paused, "state": "paused"}]


async def test_delivery_to_a_paused_stopped_or_unknown_agent_fails_and_is_recorded(
    client, stack
) -> None:
    paused = await agent(client, state="paused")
    stopped = await agent(client, state="stopped")
    unknown = uuid.uuid4().hex
    for receiver, words in ((paused, "paused"), (stopped, "stopped"), (unknown, "does not exist")):
        response = await send(client, performative="request", receivers=[receiver], content="x")

        assert response.status_code == 422, response.text
        body = error(response)
        assert body["code"] == "MESSAGE_DELIVERY_FAILED"
        assert words in body["message"]
        [delivery] = body["details"]["deliveries"]
        assert delivery["status"] == "failed" and words in delivery["reason"]
        events = await stream_events(
            stack, conversation_stream("default", body["details"]["conversation_id"])
        )
        assert [e.type for e in events] == ["message.sent", "message.failed"]
        assert events[1].data["receiver"] == receiver
        assert events[1].data["code"] == "MESSAGE_DELIVERY_FAILED"
        read = (await client.get(f"{MESSAGES}/{body['details']['message_id']}")).json()["data"]
        assert read["deliveries"][0]["status"] == "failed"


async def test_one_reachable_receiver_of_two_is_a_partial_delivery(client) -> None:
    running = await agent(client)
    paused = await agent(client, state="paused")

    response = await send(
        client, performative="inform", receivers=[running, paused], content="both?"
    )

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "partially_delivered"
    assert data["delivered_to"] == [running]
    failed = [d for d in data["deliveries"] if d["status"] == "failed"]
    assert [d["receiver"] for d in failed] == [paused]


async def test_a_reply_to_an_inform_breaks_the_protocol(client, stack) -> None:
    sent = await says(client, "alice", "inform", "bob", content="fyi")
    assert sent.status_code == 202, sent.text
    original = sent.json()["data"]

    reply = await says(client, "bob", "agree", "alice", in_reply_to=original["message_id"])

    assert reply.status_code == 409, reply.text
    body = error(reply)
    assert body["code"] == "PROTOCOL_VIOLATION"
    assert "expects no reply" in body["message"]
    assert body["details"]["conversation_id"] == original["conversation_id"]
    events = await stream_events(stack, conversation_stream("default", original["conversation_id"]))
    assert [e.type for e in events] == ["message.sent", "message.rejected"]
    assert events[1].data["code"] == "PROTOCOL_VIOLATION"


async def test_an_accept_proposal_cannot_answer_a_request(client) -> None:
    conversation = unique("conv")
    asked = await says(
        client,
        "alice",
        "request",
        "bob",
        conversation_id=conversation,
        reply_with="ask-1",
        content="do it",
    )
    assert asked.status_code == 202, asked.text

    wrong = await says(
        client, "bob", "accept-proposal", "alice", conversation_id=conversation, in_reply_to="ask-1"
    )
    # no conversation_id: joins the one it answers
    right = await says(client, "bob", "agree", "alice", in_reply_to="ask-1")

    assert wrong.status_code == 409, wrong.text
    assert error(wrong)["code"] == "PROTOCOL_VIOLATION"
    assert "accept-proposal cannot answer request" in error(wrong)["message"]
    assert right.status_code == 202, right.text
    assert right.json()["data"]["conversation_id"] == conversation


async def test_a_reply_after_reply_by_is_refused_as_expired(client) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    asked = await says(client, "alice", "query-if", "bob", content="is it raining?", reply_by=past)
    assert asked.status_code == 202, asked.text

    late = await says(
        client,
        "bob",
        "inform",
        "alice",
        in_reply_to=asked.json()["data"]["message_id"],
        content="yes",
    )

    assert late.status_code == 409, late.text
    assert error(late)["code"] == "MESSAGE_EXPIRED"
    rejected = (await client.get(f"{MESSAGES}/{error(late)['details']['message_id']}")).json()
    assert rejected["data"]["status"] == "rejected"
    assert rejected["data"]["rejection"]["code"] == "MESSAGE_EXPIRED"


async def test_a_retried_send_is_recorded_once(client, stack) -> None:
    receiver = await agent(client)
    key = {"Idempotency-Key": unique("retry")}
    first = await send(
        client, performative="inform", receivers=[receiver], content="once", headers=key
    )
    again = await send(
        client, performative="inform", receivers=[receiver], content="once", headers=key
    )

    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["message_id"] == first.json()["data"]["message_id"]
    assert again.json()["data"]["delivered_to"] == [receiver]
    events = await stream_events(
        stack, conversation_stream("default", first.json()["data"]["conversation_id"])
    )
    assert [e.type for e in events].count("message.sent") == 1


async def test_history_filters_by_conversation_agent_and_performative_and_pages(client) -> None:
    conversation = unique("conv")
    someone = f"user:{unique('carol')}"
    sent = []
    for i, (performative, sender) in enumerate(
        [("inform", someone), ("request", "user:dave"), ("inform", "user:dave")] * 2
    ):
        response = await send(
            client,
            performative=performative,
            sender=sender,
            receivers=["user:erin"],
            conversation_id=conversation,
            content=f"m{i}",
        )
        assert response.status_code == 202, response.text
        sent.append(response.json()["data"]["message_id"])

    pages, cursor = [], None
    while True:
        params = {"conversation_id": conversation, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(MESSAGES, params=params)).json()
        pages.append([m["message_id"] for m in page["data"]])
        assert page["pagination"]["total_count"] == 6
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            break
    informs = (
        await client.get(
            MESSAGES, params={"conversation_id": conversation, "performative": "inform"}
        )
    ).json()
    from_someone = (await client.get(MESSAGES, params={"agent_id": someone})).json()
    bad = await client.get(MESSAGES, params={"performative": "shout"})

    assert pages == [sent[:4], sent[4:]]
    assert [m["content"] for m in informs["data"]] == ["m0", "m2", "m3", "m5"]
    assert [m["content"] for m in from_someone["data"]] == ["m0", "m3"]
    assert bad.status_code == 422


async def test_the_event_stream_follows_one_agents_messages_of_one_performative(client) -> None:
    watched = await agent(client)
    other = await agent(client)
    params = {"agent_id": watched, "performative": "request"}
    async with aconnect_sse(
        client, "GET", "/api/v1/events", params=params, timeout=STREAM_TIMEOUT
    ) as sse:
        events = sse.aiter_sse()
        await send(client, performative="inform", receivers=[watched], content="not this")
        await send(client, performative="request", receivers=[other], content="nor this")
        wanted = await send(client, performative="request", receivers=[watched], content="this")
        async with asyncio.timeout(10):
            received = await anext(events)

    envelope = received.json()
    assert envelope["type"] == "message.sent"
    assert envelope["data"]["message"]["message_id"] == wanted.json()["data"]["message_id"]
    bad = await client.get("/api/v1/events", params={"performative": "shout"})
    assert bad.status_code == 400


async def test_a_websocket_subscription_follows_one_agents_requests(client, stack) -> None:
    watched = await agent(client)
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    async with connect(url, additional_headers=auth_headers(stack)) as ws:
        subscribe = {
            "type": "subscribe",
            "id": "s1",
            "filter": {"agent_ids": [watched], "performatives": ["request", "cfp"]},
        }
        await ws.send(json.dumps(subscribe))
        async with asyncio.timeout(10):
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await send(client, performative="inform", receivers=[watched], content="no")
            wanted = await send(client, performative="request", receivers=[watched], content="y")
            frame = json.loads(await ws.recv())

    assert frame["type"] == "event"
    assert frame["event"]["data"]["message"]["message_id"] == wanted.json()["data"]["message_id"]


async def test_send_and_wait_times_out_when_nobody_answers(client) -> None:
    response = await send(
        client, performative="request", receivers=["user:nobody"], content="anyone?", wait=0.5
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["timed_out"] is True
    assert data["status"] == "recorded"
    assert "reply" not in data
    assert (await client.get(f"{MESSAGES}/{data['message_id']}")).status_code == 200


async def test_send_and_wait_returns_the_first_reply(client) -> None:
    conversation = unique("conv")
    waiting = asyncio.create_task(
        says(
            client,
            "alice",
            "request",
            "bob",
            conversation_id=conversation,
            reply_with="q-1",
            content="lunch?",
            wait=10,
        )
    )
    for _ in range(100):  # until the request is recorded
        history = await client.get(MESSAGES, params={"conversation_id": conversation})
        if history.json()["data"]:
            break
        await asyncio.sleep(0.05)
    answered = await says(client, "bob", "agree", "alice", in_reply_to="q-1", content="yes")
    assert answered.status_code == 202, answered.text

    response = await waiting

    assert response.status_code == 200, response.text
    reply = response.json()["data"]["reply"]
    assert reply["performative"] == "agree"
    assert reply["in_reply_to"] == "q-1"
    assert reply["conversation_id"] == conversation


async def test_a_running_agent_answers_a_request_with_an_inform(client) -> None:
    receiver = await agent(client)

    response = await send(
        client, performative="request", receivers=[receiver], content="hello", wait=5
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["reply"]["performative"] == "inform"
    assert data["reply"]["in_reply_to"] == data["message_id"]
    assert data["reply"]["conversation_id"] == data["conversation_id"]


async def test_an_agent_whose_message_cannot_be_delivered_gets_a_failure_notice(
    client, stack
) -> None:
    sender = await agent(client)
    paused = await agent(client, state="paused")

    response = await send(
        client, performative="request", sender=sender, receivers=[paused], content="x", wait=5
    )

    assert response.status_code == 422, response.text  # at once: nobody can answer
    details = error(response)["details"]
    events = await stream_events(stack, conversation_stream("default", details["conversation_id"]))
    notices = [
        e.data["message"]
        for e in events
        if e.type == "message.sent" and e.data["message"]["sender"] == "user:parley"
    ]
    assert len(notices) == 1
    assert notices[0]["performative"] == "failure"
    assert notices[0]["receivers"] == [sender]
    assert notices[0]["in_reply_to"] == details["message_id"]
    assert notices[0]["content"]["receiver"] == paused
    assert "paused" in notices[0]["content"]["reason"]


async def test_a_recorded_delivery_lost_before_its_publish_is_redelivered_after_a_restart(
    client, stack: Stack
) -> None:
    receiver = await agent(client)
    message = AclMessage(
        message_id=uuid.uuid4().hex,
        performative="request",
        sender="user:alice",
        receivers=[receiver],
        conversation_id=unique("lost"),
        content="are you there?",
        sent_at=datetime.now(UTC),
    )
    stream = conversation_stream(message.namespace, message.conversation_id)
    nc = await nats.connect(stack.nats_url)
    try:
        store = await open_store(backend="jetstream", nats_url=stack.nats_url, nc=nc)
        event = NewEvent(
            type="message.sent",
            subject=message.conversation_id,
            data=msgspec.to_builtins(MessageSent(message=message)),
        )
        await store.append(stream, [event], 0)  # recorded, never published: a crash
        await store.close()
        await asyncio.to_thread(stack.stop_process, "messaging")
        stack.start_process("messaging")
        for _ in range(200):
            events = await stream_events(stack, stream)
            if [e.type for e in events] == ["message.sent", "message.sent"]:
                break  # the answer, which carries the delivery as its receipt
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"not redelivered: {[e.type for e in events]}")
        assert events[1].data["message"]["sender"] == receiver
        assert events[1].data["message"]["in_reply_to"] == message.message_id
        assert events[1].data["receipt"]["message_id"] == message.message_id
    finally:
        await nc.close()
