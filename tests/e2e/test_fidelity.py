"""The calls seed users make first, the way they make them (issue 13, "fidelity"): a
conversation id the client chooses (GoAgents), agents addressed by name, Caxton's
`sender: "client_001"`, and `/ws` `unsubscribe {subscription_id}` — through the real stack."""

import asyncio
import json
import uuid
from typing import Any

import httpx
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from httpx_sse import aconnect_sse
from test_security_auth import as_key
from test_security_auth import make_key
from tests_support import auth_headers
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect

from parley.devstack.stack import Stack

AGENTS = "/api/v1/agents"


def _conversation_id() -> str:
    return f"conv-{uuid.uuid4().hex[:8]}"


async def _chat(http: httpx.AsyncClient, agent: str, message: str, **body: Any) -> httpx.Response:
    return await http.post(f"{AGENTS}/{agent}/chat", json={"message": message, **body}, timeout=30)


# --- a conversation id the client chooses ------------------------------------------------


async def test_a_client_chosen_conversation_id_opens_a_conversation_then_continues_it(api):
    agent = await new_agent(api, "goagents")
    conversation = _conversation_id()

    first = body_of(await _chat(api, agent, "hello", conversation_id=conversation))["data"]
    assert first["conversation_id"] == conversation and first["response"] == "echo: hello"
    second = body_of(await _chat(api, agent, "again", conversation_id=conversation))["data"]
    assert second["conversation_id"] == conversation

    session = body_of(await api.get(f"/api/v1/sessions/{conversation}"))["data"]
    assert session["agent_id"] == agent and session["turn_count"] == 2
    said = [entry["content"] for entry in session["history"] if entry["role"] == "user"]
    assert said == ["hello", "again"]


async def test_a_streamed_chat_opens_its_client_chosen_conversation_too(api):
    agent = await new_agent(api, "goagents")
    conversation = _conversation_id()
    body = {"message": "stream", "conversation_id": conversation}
    async with aconnect_sse(api, "POST", f"{AGENTS}/{agent}/stream", json=body) as source:
        frames = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert {frame["conversation_id"] for frame in frames} == {conversation}
    session = body_of(await api.get(f"/api/v1/sessions/{conversation}"))["data"]
    assert session["agent_id"] == agent and session["turn_count"] == 1


async def test_a_conversation_id_outside_the_id_pattern_is_a_validation_error(api):
    agent = await new_agent(api, "goagents")
    for bad in ("conv 456", "conv/456", "x" * 65, ""):
        error = error_of(
            await _chat(api, agent, "hi", conversation_id=bad), 422, "VALIDATION_ERROR"
        )
        assert error["details"]["errors"][0]["field"] == "body.conversation_id", error


async def test_another_agents_conversation_id_is_refused_clearly(api):
    owner, other = await new_agent(api, "owner"), await new_agent(api, "other")
    conversation = _conversation_id()
    body_of(await _chat(api, owner, "mine", conversation_id=conversation))

    error = error_of(
        await _chat(api, other, "theirs", conversation_id=conversation), 400, "INVALID_REQUEST"
    )
    assert "another agent" in error["message"], error
    assert error["details"]["errors"][0]["field"] == "body.conversation_id"
    session = body_of(await api.get(f"/api/v1/sessions/{conversation}"))["data"]
    assert session["agent_id"] == owner and session["turn_count"] == 1


async def test_another_namespace_cannot_reach_a_chosen_conversation(api, client, namespace):
    agent = await new_agent(api, "owner")
    conversation = _conversation_id()
    body_of(await _chat(api, agent, "private", conversation_id=conversation))

    elsewhere = {"X-Parley-Namespace": f"{namespace}-x"}
    intruder = await new_agent(client, "intruder", headers=elsewhere)
    response = await client.post(
        f"{AGENTS}/{intruder}/chat",
        json={"message": "let me in", "conversation_id": conversation},
        headers=elsewhere,
        timeout=30,
    )
    error_of(response, 404, "SESSION_NOT_FOUND")
    read = await client.get(f"/api/v1/sessions/{conversation}", headers=elsewhere)
    error_of(read, 404, "SESSION_NOT_FOUND")
    session = body_of(await api.get(f"/api/v1/sessions/{conversation}"))["data"]
    assert session["agent_id"] == agent and session["turn_count"] == 1


async def test_a_websocket_chat_by_agent_name_opens_a_chosen_conversation(api, stack, namespace):
    name = f"ws_bot-{uuid.uuid4().hex[:6]}"
    agent = await _named_agent(api, name)
    body_of(await api.post(f"{AGENTS}/{agent}/start"))
    conversation = _conversation_id()
    url = stack.edge_url.replace("http://", "ws://", 1) + f"{AGENTS}/{name}/ws"
    headers = {**auth_headers(stack), "X-Parley-Namespace": namespace}
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(
            json.dumps({"type": "message", "message": "hi", "conversation_id": conversation})
        )
        async with asyncio.timeout(20):
            while (frame := json.loads(await ws.recv()))["type"] not in ("end", "error"):
                pass
    assert frame["type"] == "end" and frame["data"]["conversation_id"] == conversation, frame
    session = body_of(await api.get(f"/api/v1/sessions/{conversation}"))["data"]
    assert session["agent_id"] == agent


# --- agents by name --------------------------------------------------------------------


async def _named_agent(http: httpx.AsyncClient, name: str, **spec: Any) -> str:
    created = await http.post(AGENTS, json={"name": name, **spec})
    return str(body_of(created, 201)["data"]["id"])


async def test_an_agent_is_addressed_by_its_name_wherever_by_its_id(api):
    name = f"Support Bot {uuid.uuid4().hex[:6]}"
    agent = await _named_agent(api, name)
    path = f"{AGENTS}/{name}"

    assert body_of(await api.get(path))["data"]["id"] == agent
    assert body_of(await api.post(f"{path}/start"))["data"]["status"] == "running"
    chat = body_of(await _chat(api, name, "by name"))["data"]
    session = body_of(await api.get(f"/api/v1/sessions/{chat['conversation_id']}"))["data"]
    assert session["agent_id"] == agent
    versions = body_of(await api.get(f"{path}/versions"))["data"]
    assert [version["version"] for version in versions] == [1]
    assert body_of(await api.get(f"{path}/logs"))["data"] is not None
    changed = await api.patch(path, json={"description": "renamed soon"})
    assert body_of(changed)["data"]["id"] == agent


async def test_a_message_receiver_may_be_an_agents_name(api):
    name = f"support_bot-{uuid.uuid4().hex[:6]}"  # a receiver is a bare id-like word
    agent = await _named_agent(api, name)
    body_of(await api.post(f"{AGENTS}/{name}/start"))
    message = {"performative": "request", "sender": "user:ops", "content": "x"}
    for routing in ({"receiver": name}, {"receivers": [name]}):
        sent = await api.post("/api/v1/messages", json={**message, **routing})
        assert body_of(sent, 202)["data"]["delivered_to"] == [agent]


async def test_a_name_follows_a_rename_and_an_unknown_name_is_404(api):
    old, new = f"before-{uuid.uuid4().hex[:6]}", f"after-{uuid.uuid4().hex[:6]}"
    agent = await _named_agent(api, old)
    body_of(await api.patch(f"{AGENTS}/{agent}", json={"name": new}))

    assert body_of(await api.get(f"{AGENTS}/{new}"))["data"]["id"] == agent
    error_of(await api.get(f"{AGENTS}/{old}"), 404, "AGENT_NOT_FOUND")
    error_of(await api.post(f"{AGENTS}/{old}/start"), 404, "AGENT_NOT_FOUND")
    error_of(await _chat(api, "no such agent", "hi"), 404, "AGENT_NOT_FOUND")
    body_of(await api.delete(f"{AGENTS}/{new}"))
    error_of(await api.get(f"{AGENTS}/{new}"), 404, "AGENT_NOT_FOUND")


async def test_an_id_wins_over_a_name(api):
    first = await new_agent(api, "first", actions=())
    impostor = await _named_agent(api, first)  # another agent called by the first one's id
    assert body_of(await api.get(f"{AGENTS}/{first}"))["data"]["id"] == first
    assert impostor != first


async def test_a_name_resolves_only_in_its_own_namespace(api, client, namespace):
    name = f"private-{uuid.uuid4().hex[:6]}"
    await _named_agent(api, name)
    elsewhere = {"X-Parley-Namespace": f"{namespace}-y"}
    error_of(await client.get(f"{AGENTS}/{name}", headers=elsewhere), 404, "AGENT_NOT_FOUND")
    chat = await client.post(f"{AGENTS}/{name}/chat", json={"message": "x"}, headers=elsewhere)
    error_of(chat, 404, "AGENT_NOT_FOUND")


# --- Caxton's sender: "client_001" -------------------------------------------------------


async def test_caxtons_client_sender_is_the_callers_principal(stack, client, namespace):
    secret, key = await make_key(client, ["operator"], [namespace])
    async with as_key(stack, secret, namespace) as caxton:
        agent = await new_agent(caxton, "analyst", capabilities=["data-analysis"])
        conversation = f"conv_{uuid.uuid4().hex[:6]}"
        for routing in ({"receiver": agent}, {"capability": "data-analysis"}):
            message = {
                "performative": "request",
                "sender": "client_001",
                "content": {"action": "analyze", "data": {"dataset": "sales_q3.csv"}},
                "conversation_id": conversation,
                "reply_with": "msg_001",
                **routing,
            }
            sent = body_of(await caxton.post("/api/v1/messages", json=message), 202)["data"]
            assert sent["status"] == "delivered" and sent["delivered_to"] == [agent], sent
            read = body_of(await caxton.get(f"/api/v1/messages/{sent['message_id']}"))["data"]
            assert read["sender"] == f"user:key.{key['key_id']}", read


async def test_a_sender_acts_as_an_agent_only_of_its_own_namespace(stack, client, namespace):
    other = f"{namespace}-z"
    victim = await new_agent(client, "victim", headers={"X-Parley-Namespace": other})
    secret, key = await make_key(client, ["operator"], [namespace])
    async with as_key(stack, secret, namespace) as caller:
        mine = await new_agent(caller, "mine")
        message = {"performative": "inform", "receiver": mine, "content": "hi"}
        as_victim = await caller.post("/api/v1/messages", json={**message, "sender": victim})
        sent = body_of(as_victim, 202)["data"]
        read = body_of(await caller.get(f"/api/v1/messages/{sent['message_id']}"))["data"]
        assert read["sender"] == f"user:key.{key['key_id']}"  # not the other namespace's agent
        name = body_of(await caller.get(f"{AGENTS}/{mine}"))["data"]["name"]
        as_mine = await caller.post(
            "/api/v1/messages",
            json={"performative": "inform", "sender": name, "receiver": "user:me", "content": 1},
        )
        read = await caller.get(f"/api/v1/messages/{body_of(as_mine, 202)['data']['message_id']}")
        assert body_of(read)["data"]["sender"] == mine  # its own agent, named by name
    seen = await client.get(
        "/api/v1/messages", params={"agent_id": victim}, headers={"X-Parley-Namespace": other}
    )
    assert body_of(seen)["data"] == []


# --- /ws unsubscribe {subscription_id} ---------------------------------------------------


async def _frame(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    async with asyncio.timeout(10):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def test_ws_unsubscribe_takes_a_subscription_id(stack: Stack) -> None:
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    async with connect(url, additional_headers=auth_headers(stack)) as ws:
        quiet = {"filter": {"types": ["nothing.ever"]}}  # no event frame comes between
        subscribed = await _frame(ws, {"type": "subscribe", "id": "sub_123", **quiet})
        assert subscribed["type"] == "subscribed", subscribed
        done = await _frame(ws, {"type": "unsubscribe", "subscription_id": "sub_123"})
        assert done == {"type": "unsubscribed", "id": "sub_123"}
        gone = await _frame(ws, {"type": "unsubscribe", "subscription_id": "sub_123"})
        assert gone["type"] == "error" and gone["id"] == "sub_123", gone
        await _frame(ws, {"type": "subscribe", "id": "a", **quiet})
        both = await _frame(ws, {"type": "unsubscribe", "id": "a", "subscription_id": "b"})
        assert both["type"] == "error" and both["code"] == "INVALID_REQUEST", both
        neither = await _frame(ws, {"type": "unsubscribe"})
        assert neither["type"] == "error" and neither["code"] == "INVALID_REQUEST", neither
        same = await _frame(ws, {"type": "unsubscribe", "id": "a", "subscription_id": "a"})
        assert same == {"type": "unsubscribed", "id": "a"}
