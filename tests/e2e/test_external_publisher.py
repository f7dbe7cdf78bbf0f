"""Other systems can publish: a plain nats-py client, knowing only the documented JSON."""

import json
import uuid

import httpx
import nats


async def test_a_plain_nats_client_creates_an_agent_visible_over_rest(stack, client) -> None:
    # Deliberately nothing from Parley: the subject and the JSON are the documented contract.
    name = f"from-nats-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(stack.nats_url)
    try:
        message = await nc.request(
            "parley.cmd.registry.create_agent",
            json.dumps({"spec": {"name": name, "capabilities": ["translate"]}}).encode(),
            timeout=10,
        )
    finally:
        await nc.close()
    reply = json.loads(message.data)
    assert reply["ok"] is True, reply
    assert reply["version"] == 1 and reply["position"] > 0

    agent = await _eventually_get(client, reply["agent_id"])
    assert agent["spec"]["name"] == name
    assert agent["spec"]["capabilities"] == ["translate"]
    assert agent["state"] == "created"


async def test_a_plain_nats_client_gets_a_validation_error_for_unknown_fields(stack) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        message = await nc.request(
            "parley.cmd.registry.create_agent",
            json.dumps({"spec": {"name": "x", "colour": "red"}}).encode(),
            timeout=10,
        )
    finally:
        await nc.close()
    reply = json.loads(message.data)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "VALIDATION_ERROR"
    assert "colour" in reply["error"]["message"]


async def _eventually_get(client: httpx.AsyncClient, agent_id: str) -> dict:
    """The agent over REST; a NATS publisher gets no read-your-writes wait from the edge."""
    import asyncio

    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/api/v1/agents/{agent_id}")
            if response.status_code == 200:
                return response.json()["data"]
            assert response.status_code == 404, response.text
            await asyncio.sleep(0.05)
