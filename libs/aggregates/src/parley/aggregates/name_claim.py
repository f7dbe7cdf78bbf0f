"""Who holds an agent name in a namespace, folded from ``name_stream(namespace, name)``.

Agent names are unique per namespace through this second aggregate: the registry claims a
name (:class:`Claim`) before it creates or renames an agent, and releases it
(:class:`Release`) after a delete or a rename. Pure, like every aggregate.
"""

from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import EVENT_TYPES
from parley.contracts.registry import AgentNameClaimed
from parley.contracts.registry import AgentNameReleased
from parley.contracts.registry import name_stream

__all__ = ["CATEGORY", "FOLDS", "Claim", "NameClaim", "NameCommand", "Release", "decide", "evolve"]

CATEGORY = name_stream.category
"""The stream category this aggregate folds (``agentname-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "agent_name")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""


class NameClaim(msgspec.Struct, frozen=True, kw_only=True):
    """Who holds an agent name in a namespace (stream ``name_stream(ns, name)``)."""

    holder: str | None = None
    """Id of the agent holding the name, or None if it is free."""
    version: int = 0
    """Stream version of the last folded event."""


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Claim ``name`` for ``agent_id``."""

    agent_id: str
    """The agent that wants the name."""
    name: str
    """The name (for the event and the error message)."""
    namespace: str
    """The namespace (for the error message)."""
    agent_exists: bool
    """Whether the *current holder's* agent is live (its stream exists and it is not
    deleted). A claim whose holder never got created (a crash between claim and create) or
    was deleted without releasing is taken over."""


class Release(msgspec.Struct, frozen=True, kw_only=True):
    """Release ``name`` held by ``agent_id``."""

    agent_id: str
    name: str


NameCommand = Claim | Release


def evolve(state: NameClaim | None, event: Event) -> NameClaim:
    """Fold one claim event; unknown types only advance the version."""
    current = state or NameClaim()
    holder = current.holder
    if event.type == "agent_name.claimed":
        holder = msgspec.convert(event.data, AgentNameClaimed).agent_id
    elif event.type == "agent_name.released":
        # A stale release (by an agent whose claim was taken over) frees nothing.
        if msgspec.convert(event.data, AgentNameReleased).agent_id == holder:
            holder = None
    return NameClaim(holder=holder, version=event.version)


def decide(state: NameClaim | None, command: NameCommand, ctx: Context) -> Decision[Never]:
    """Decide a claim or a release of a name.

    A claim decides one ``agent_name.claimed``, or nothing if the agent already holds the
    name (an idempotent retry). A release decides one ``agent_name.released``, or nothing
    if the agent does not hold the name.

    Raises:
        ParleyError: ``AGENT_ALREADY_EXISTS`` if a live agent holds the name.
    """
    del ctx
    holder = state.holder if state is not None else None
    if isinstance(command, Release):
        if holder != command.agent_id:
            return Decision()
        released = AgentNameReleased(name=command.name, agent_id=command.agent_id)
        return Decision([("agent_name.released", released)])
    if holder == command.agent_id:
        return Decision()
    if holder is not None and command.agent_exists:
        raise ParleyError(
            ErrorCode.AGENT_ALREADY_EXISTS,
            f"an agent named {command.name!r} already exists in namespace {command.namespace}",
            {"name": command.name, "namespace": command.namespace, "agent_id": holder},
        )
    claimed = AgentNameClaimed(name=command.name, agent_id=command.agent_id)
    return Decision([("agent_name.claimed", claimed)])
