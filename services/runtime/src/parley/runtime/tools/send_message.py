"""The `send_message` tool: an agent sends a FIPA-ACL message and waits for the reply.

The agent's definition bounds it (receivers, capabilities, performatives, wait); the
model's arguments only choose within those bounds, and a reply's content comes back as data.
The message carries its causal chain's hop count, so agents messaging each other in a loop
are stopped by the messaging service's hop limit.
"""

import msgspec

from parley.contracts.acl import Performative
from parley.contracts.tools import SendMessageArgs
from parley.contracts.tools import SendMessageConfig
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["send_message"]

_PERFORMATIVES = {p.value for p in Performative}


@builtin("send_message", SendMessageArgs, SendMessageConfig)
async def send_message(
    arguments: SendMessageArgs, config: SendMessageConfig, ctx: ToolContext
) -> ToolOutcome:
    """Send the message; the reply (or that none came) as JSON text."""
    if arguments.performative not in _PERFORMATIVES:
        raise ToolError(
            "invalid_arguments", f"{arguments.performative!r} is not a FIPA performative"
        )
    if arguments.performative not in config.allowed_performatives:
        raise ToolError(
            "refused",
            f"this agent may not send {arguments.performative!r}; allowed:"
            f" {', '.join(config.allowed_performatives)}",
        )
    if (arguments.receiver is None) == (arguments.capability is None):
        raise ToolError("invalid_arguments", "name exactly one of receiver or capability")
    if arguments.receiver is not None and config.allowed_receivers:
        if arguments.receiver not in config.allowed_receivers:
            raise ToolError("refused", f"this agent may not message {arguments.receiver!r}")
    if arguments.capability is not None and config.allowed_capabilities:
        if arguments.capability not in config.allowed_capabilities:
            raise ToolError("refused", f"this agent may not route by {arguments.capability!r}")
    if ctx.messenger is None:
        raise ToolError("refused", "this run cannot send messages")
    capped = msgspec.structs.replace(
        arguments, wait_seconds=min(arguments.wait_seconds, config.max_wait_seconds)
    )
    outcome = await ctx.messenger.send(capped)
    return ToolOutcome(content=msgspec.json.encode(outcome).decode(), data=outcome)
