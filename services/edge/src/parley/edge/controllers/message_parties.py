"""Who a message sent through the API is from and to, as the messaging service records it.

- An agent may be named by its id or its name (:func:`~parley.edge.http.agent_names.agent_ref`)
  as the sender, a receiver or a `reply_to`; it is recorded by id.
- A bare sender that is no agent of the request's namespace (Caxton's `"client_001"`) is an
  external client, not an unknown agent: with identity (a key or a token), it is the caller's
  own principal, `user:<principal>` (e.g. `user:key.<key id>`); with authentication off, it
  is `user:<the name given>`. So a caller acts as an agent only of a namespace it may message
  in (the namespace walls and roles are checked before), never as another namespace's agent.
- `user:`, `task:` and `run:` principals are recorded as given; the event's `actor` names the
  caller whatever the sender says.
"""

import re

import msgspec

from parley.contracts.acl import OutgoingMessage
from parley.edge.http.agent_names import agent_ref
from parley.edge.http.auth import LOCAL_ADMIN
from parley.edge.projections.agents import AgentsProjection
from parley.identity.principal import Principal

__all__ = ["client_principal", "with_parties"]

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.@-]+")
_MAX_NAME = 128


def client_principal(given: str, caller: Principal | None) -> str:
    """The `user:` principal of an external client that called itself ``given``: the
    caller's principal when it has an identity, else ``given``."""
    name = given if caller is None or caller == LOCAL_ADMIN else caller.id
    return "user:" + (_NOT_IN_NAME.sub(".", name).strip(".") or "client")[:_MAX_NAME]


def with_parties(
    message: OutgoingMessage, agents: AgentsProjection, namespace: str, caller: Principal | None
) -> OutgoingMessage:
    """``message`` with its sender and receivers as they are recorded."""
    sender = message.sender
    if ":" not in sender:
        agent = agent_ref(agents, namespace, sender)
        known = agents.get(namespace, agent) is not None
        sender = agent if known else client_principal(sender, caller)
    return msgspec.structs.replace(
        message,
        sender=sender,
        receivers=[_party(agents, namespace, ref) for ref in message.receivers],
        reply_to=[_party(agents, namespace, ref) for ref in message.reply_to],
    )


def _party(agents: AgentsProjection, namespace: str, ref: str) -> str:
    """An agent by id or name, as its id; anything else (`user:`, `task:`, ...) as given."""
    return ref if ":" in ref else agent_ref(agents, namespace, ref)
