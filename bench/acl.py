"""FIPA request → inform round trips, agent to agent, through the whole platform.

Agent A sends agent B a `request` and waits for the `inform`: messaging records it, B's
runtime takes it from its inbox, runs a turn (offline provider), and answers through
messaging, which records the reply, delivers it to A's inbox and hands it to the waiting
sender. Every message is an event. Measured straight over NATS (the messaging command) and
through the edge (`POST /api/v1/messages` with `wait`).
"""

import uuid

import aiohttp
import msgspec
import nats

from bench._stats import measure
from bench._stats import post
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import SendMessage

__all__ = ["round_trips"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(MessageReply).decode


async def _agent(http: aiohttp.ClientSession, instances: int) -> str:
    body = {"name": f"acl-{uuid.uuid4().hex[:8]}", "instances": instances}
    agent_id = (await post(http, "/api/v1/agents", body))["data"]["id"]
    await post(http, f"/api/v1/agents/{agent_id}/start")
    return agent_id


async def round_trips(
    edge_url: str, nats_url: str, count: int = 1_000, in_flight: int = 64
) -> None:
    """Sequential and concurrent request → inform round trips, over NATS and the edge."""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        a = await _agent(http, in_flight)
        b = await _agent(http, in_flight)
        nc = await nats.connect(nats_url)
        try:

            async def over_nats(i: int) -> None:
                command = SendMessage(
                    message=OutgoingMessage(
                        performative=Performative.REQUEST,
                        sender=a,
                        receivers=[b],
                        content=f"task {i}",
                        protocol="fipa-request",
                    ),
                    wait_seconds=10,
                )
                msg = await nc.request("parley.cmd.messaging.send", _encode(command), timeout=15)
                reply = _decode(msg.data)
                if reply.reply is None or reply.reply.performative is not Performative.INFORM:
                    raise RuntimeError(f"no inform: {reply}")

            async def over_edge(i: int) -> None:
                body = {
                    "performative": "request",
                    "sender": a,
                    "receivers": [b],
                    "content": f"task {i}",
                    "protocol": "fipa-request",
                    "wait": 10,
                }
                data = (await post(http, "/api/v1/messages", body))["data"]
                if not data.get("reply") or data["reply"]["performative"] != "inform":
                    raise RuntimeError(f"no inform: {data}")

            for name, trip in (("over NATS", over_nats), ("through the edge", over_edge)):
                await measure(
                    f"ACL request→inform {name}",
                    trip,
                    count,
                    in_flight,
                    concurrent_label="conversations",
                )
        finally:
            await nc.close()
