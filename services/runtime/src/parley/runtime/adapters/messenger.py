"""An agent's way to send FIPA-ACL messages (behind the `send_message` tool).

Messages go through the messaging service like everyone's; they carry the causal chain's
hop count plus one, so a loop of agents messaging each other ends at the hop limit.
"""

from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from parley.contracts import subjects
from parley.contracts.acl import SERVICE
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import SendMessage
from parley.contracts.tools import SendMessageArgs
from parley.kit.telemetry import inject
from parley.runtime.tools import ToolError

__all__ = ["AgentMessenger", "send_message_command"]

_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(MessageReply).decode
_SLACK_S = 5.0


async def send_message_command(nc: Client, command: SendMessage, within: float) -> MessageReply:
    """Send ``command`` to the messaging service and decode its reply.

    Raises:
        nats.errors.NoRespondersError, nats.errors.TimeoutError: messaging is unreachable.
    """
    msg = await nc.request(
        subjects.cmd(SERVICE, "send"), _encode(command), timeout=within, headers=inject()
    )
    return _decode_reply(msg.data)


class AgentMessenger:
    """Sends on behalf of one agent, in one causal chain."""

    def __init__(self, nc: Client, *, namespace: str, agent_id: str, hops: int) -> None:
        self.nc, self.namespace, self.agent_id, self.hops = nc, namespace, agent_id, hops

    async def send(self, message: SendMessageArgs) -> dict[str, Any]:
        """Send; with ``wait_seconds``, wait for the reply. The outcome as plain data."""
        outgoing = OutgoingMessage(
            performative=Performative(message.performative),
            sender=self.agent_id,
            receivers=[message.receiver] if message.receiver else [],
            capability=message.capability,
            content=message.content,
            language=None if isinstance(message.content, str) else "json",
        )
        command = SendMessage(
            message=outgoing,
            namespace=self.namespace,
            wait_seconds=message.wait_seconds or None,
            hops=self.hops + 1,
        )
        try:
            reply = await send_message_command(self.nc, command, message.wait_seconds + _SLACK_S)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
            raise ToolError("failed", "the messaging service is unavailable") from None
        if not reply.ok:
            error = reply.error
            detail = f"{error.code}: {error.message}" if error else "refused"
            raise ToolError("refused", detail)
        answer = reply.reply
        return {
            "message_id": reply.message_id,
            "status": reply.status,
            "delivered_to": reply.delivered_to,
            "timed_out": reply.timed_out,
            "reply": None
            if answer is None
            else {
                "performative": answer.performative.value,
                "sender": answer.sender,
                "content": answer.content,
            },
        }
