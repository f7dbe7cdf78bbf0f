"""Agents answer FIPA-ACL messages through the whole platform (edge → messaging → inbox →
runtime turn → reply → messaging → the waiting sender), on the offline provider.
"""

import asyncio
import json
import uuid
from typing import Any

import httpx
from e2e_support import new_agent
from tests_support import stream_events

from parley.contracts.acl import HOP_LIMIT
from parley.devstack.stack import Stack


async def agent(client: httpx.AsyncClient, **spec: Any) -> str:
    return await new_agent(client, "acl", **spec)


async def send(client: httpx.AsyncClient, **message: Any) -> httpx.Response:
    return await client.post("/api/v1/messages", json=message, timeout=30)


async def reply_of(
    client: httpx.AsyncClient, performative: str, receiver: str, content: Any, **fields: Any
) -> dict[str, Any]:
    """The reply to a message sent to ``receiver`` that waits up to 10 s for it."""
    response = await send(
        client,
        performative=performative,
        receivers=[receiver],
        content=content,
        wait=10,
        **fields,
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()["data"]["reply"]
    return reply


async def answered_with_receipt(
    client: httpx.AsyncClient, stack: Stack, conversation: str, message_id: str, receiver: str
) -> None:
    """The conversation is the message and its answer, which carries the message's receipt
    (one append, no message.delivered of its own); the messages view shows the delivery."""
    events = await stream_events(stack, f"conversation-{conversation}")
    assert [e.type for e in events] == ["message.sent", "message.sent"]
    receipt = events[1].data["receipt"]
    assert receipt["message_id"] == message_id and receipt["receiver"] == receiver
    view = (await client.get(f"/api/v1/messages/{message_id}")).json()["data"]
    (delivery,) = view["deliveries"]
    assert delivery["receiver"] == receiver and delivery["status"] == "delivered"
    assert delivery["worker"] == receipt["worker"] and delivery["at"]


async def test_request_then_inform_round_trip(client, stack: Stack):
    receiver = await agent(client)
    response = await send(
        client,
        performative="request",
        receivers=[receiver],
        content="hello",
        protocol="fipa-request",
        reply_with="r-1",
        wait=10,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    reply = data["reply"]
    assert reply["performative"] == "inform"
    assert reply["sender"] == receiver
    assert reply["in_reply_to"] == "r-1"
    assert reply["conversation_id"] == data["conversation_id"]
    assert reply["content"]["result"].startswith("echo: hello")
    # a quick turn's answer is the request's receipt (a slow one: test_graceful.py)
    await answered_with_receipt(
        client, stack, data["conversation_id"], data["message_id"], receiver
    )


async def test_query_ref_is_answered_with_inform(client):
    receiver = await agent(client, tools=[{"name": "calculator"}])
    content = 'call calculator({"expression": "6*7"})'
    reply = await reply_of(client, "query-ref", receiver, content, protocol="fipa-query")
    assert reply["performative"] == "inform"
    assert reply["content"]["result"] == "results: calculator: 42"


async def test_malformed_content_gets_not_understood(client):
    receiver = await agent(client)
    reply = await reply_of(client, "request", receiver, "{this is not json", language="json")
    assert reply["performative"] == "not-understood"
    assert "not valid" in reply["content"]["reason"]


async def test_a_cfp_gets_a_bid_from_the_agents_policy(client, stack: Stack):
    bidder = await agent(
        client, capabilities=["translate"], bidding={"base_cost": 3, "default_time_s": 2}
    )
    tender = {"task_id": "t1", "name": "translate", "requirements": {"capabilities": []}}
    reply = await reply_of(
        client, "cfp", bidder, tender, language="json", protocol="fipa-contract-net"
    )
    assert reply["performative"] == "propose"
    assert reply["content"] == {"estimated_time_s": 2.0, "cost": 3.0, "confidence": 0.8}
    # the bid is the cfp's receipt
    await answered_with_receipt(
        client, stack, reply["conversation_id"], reply["in_reply_to"], bidder
    )


async def test_an_agent_asks_another_through_the_send_message_tool(client):
    helper = await agent(client, capabilities=[f"c{uuid.uuid4().hex[:6]}"])
    capability = (await client.get(f"/api/v1/agents/{helper}")).json()["data"]["spec"][
        "capabilities"
    ][0]
    asker = await agent(client, tools=[{"name": "send_message"}])
    arguments = {"capability": capability, "content": "what is new?", "wait_seconds": 10}
    chat = await client.post(
        f"/api/v1/agents/{asker}/chat",
        json={"message": f"call send_message({json.dumps(arguments)})"},
        timeout=30,
    )
    assert chat.status_code == 200, chat.text
    result = chat.json()["data"]["tool_calls"][0]["result"]
    assert result["ok"] is True, result
    outcome = json.loads(result["content"])
    assert outcome["delivered_to"] == [helper]
    assert outcome["reply"]["performative"] == "inform"
    assert outcome["reply"]["content"]["result"].startswith("echo: what is new?")


def relay(chain: list[str], last: str) -> str:
    """A message that makes each agent of ``chain`` pass the rest on to the next."""
    content = last
    for target in reversed(chain):
        arguments = {"receiver": target, "content": content, "wait_seconds": 0}
        content = f"call send_message({json.dumps(arguments)})"
    return content


async def test_a_message_loop_is_stopped_by_the_hop_limit(client, stack: Stack):
    tools = [{"name": "send_message"}]
    a = await agent(client, tools=tools)
    b = await agent(client, tools=tools)
    chain = [b, a] * (HOP_LIMIT // 2 + 2)  # a relay longer than the hop limit allows
    first = await send(
        client, performative="request", receivers=[a], content=relay(chain, "end"), wait=0
    )
    assert first.status_code in (200, 202), first.text
    conversation_of_refusal = None
    for _ in range(100):
        refusals = await _refusals(client, a, b)
        if refusals:
            conversation_of_refusal = refusals
            break
        await asyncio.sleep(0.1)
    assert conversation_of_refusal, "the relay was never stopped"
    assert "HOP_LIMIT_EXCEEDED" in conversation_of_refusal[0]


async def _refusals(client: httpx.AsyncClient, *agents: str) -> list[str]:
    """Tool failures of the agents' chat sessions that mention the hop limit."""
    found = []
    for agent_id in agents:
        sessions = (await client.get("/api/v1/sessions", params={"agent_id": agent_id})).json()
        for session in sessions["data"]:
            detail = (await client.get(f"/api/v1/sessions/{session['id']}")).json()["data"]
            for message in detail["history"]:
                text = json.dumps(message)
                if "HOP_LIMIT_EXCEEDED" in text:
                    found.append(text)
    return found


async def test_a_paused_agent_answers_nothing_and_the_sender_learns_why(client):
    receiver = await agent(client)
    assert (await client.post(f"/api/v1/agents/{receiver}/pause")).status_code == 200
    response = await send(
        client, performative="request", receivers=[receiver], content="hello", wait=2
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "MESSAGE_DELIVERY_FAILED"
    assert "paused" in error["message"]


async def test_an_llm_judged_bid_follows_the_models_verdict(client):
    bidder = await agent(client, bidding={"policy": "llm", "base_cost": 3, "default_time_s": 2})

    async def cfp(data: object) -> dict:
        tender = {"task_id": "t1", "name": "x", "data": data}
        return await reply_of(
            client, "cfp", bidder, tender, language="json", protocol="fipa-contract-net"
        )

    # the offline model echoes the tender, so a verdict written in it is the model's verdict
    declined = await cfp({"bid": False, "reason": "not my field"})
    assert declined["performative"] == "refuse"
    assert declined["content"] == {"reason": "not my field"}
    keen = await cfp({"bid": True, "confidence": 0.33})
    assert keen["performative"] == "propose" and keen["content"]["confidence"] == 0.33
    silent = await cfp("no verdict here")  # the policy's bid stands
    assert silent["performative"] == "propose"
    # its judging turns were measured: its own time and success rate now shape the bid
    assert silent["content"]["cost"] == 3.0 and silent["content"]["confidence"] == 1.0
    assert silent["content"]["estimated_time_s"] < 2.0
