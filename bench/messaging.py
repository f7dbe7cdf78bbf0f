"""One-way FIPA-ACL messages: recorded (an event each) and queued, no answer awaited.

Two targets: `inform` to a `user:` principal (recorded only: the messaging service's own
cost, one append) and to a running agent (recorded and put on its inbox work queue: one
append and one JetStream publish; the agent's runtime records `message.delivered` and does
not answer an `inform`). Each straight over NATS (`parley.cmd.messaging.send`) and through
the edge (`POST /api/v1/messages`, which also waits until its projection shows the message).
"""

import uuid

import aiohttp
import msgspec
import nats

from bench._stats import measure
from bench._stats import post
from parley.contracts import subjects
from parley.contracts.acl import SERVICE
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import SendMessage

__all__ = ["one_way"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(MessageReply).decode
_SEND = subjects.cmd(SERVICE, "send")


async def one_way(edge_url: str, nats_url: str, count: int = 4_000, in_flight: int = 64) -> None:
    """Sequential and concurrent one-way messages over NATS and through the edge."""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        body = {"name": f"bench-{uuid.uuid4().hex[:8]}"}
        receiver = (await post(http, "/api/v1/agents", body))["data"]["id"]
        await post(http, f"/api/v1/agents/{receiver}/start")
        nc = await nats.connect(nats_url)
        try:
            for target, label in (
                ("user:bench", "to a user (recorded)"),
                (receiver, "to an agent"),
            ):

                async def over_nats(i: int, target: str = target) -> None:
                    command = SendMessage(
                        message=OutgoingMessage(
                            performative=Performative.INFORM,
                            receivers=[target],
                            content=f"note {i}",
                        )
                    )
                    reply = _decode((await nc.request(_SEND, _encode(command), timeout=10)).data)
                    if not reply.ok:
                        raise RuntimeError(f"send failed: {reply.error}")

                async def over_edge(i: int, target: str = target) -> None:
                    message = {"performative": "inform", "receivers": [target], "content": f"n{i}"}
                    await post(http, "/api/v1/messages", message)

                await measure(f"inform {label} over NATS", over_nats, count, in_flight)
                await measure(f"inform {label} through the edge", over_edge, count, in_flight)
        finally:
            await nc.close()
