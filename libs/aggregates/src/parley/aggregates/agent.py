"""The agent, folded from its stream ``agent-<id>``.

The registry decides on it; the edge's projection shows it. One fold, so the two never
disagree.
"""

from datetime import datetime
from typing import Any

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.registry import (
    EVENT_TYPES,
    AgentCreated,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    AgentUpdated,
)

__all__ = ["Agent", "CorruptStreamError", "evolve"]


class CorruptStreamError(Exception):
    """A stream holds events no valid history produces (e.g. an update before the create)."""


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    """An agent as folded from its stream."""

    id: str
    """The agent id (the stream is ``agent-<id>``)."""
    namespace: str
    """Tenant the agent lives in."""
    spec: AgentSpec
    """The current definition."""
    state: AgentState
    """Lifecycle state."""
    version: int
    """Stream version of the last folded event."""
    created_at: datetime
    """Time of ``agent.created``."""
    updated_at: datetime
    """Time of the last folded event."""
    deleted: bool = False
    """Tombstoned: refuses every command, hidden from views."""


def evolve(state: Agent | None, event: Event) -> Agent | None:
    """Fold one recorded event into an agent.

    Unknown event types (written by a newer version) leave the state as it is but still
    advance ``version``, so the expected version of the next append stays right.

    Raises:
        CorruptStreamError: On an agent event before ``agent.created``, or a second create.
        msgspec.ValidationError: If ``event.data`` does not match its payload type.
    """
    payload_type = EVENT_TYPES.get(event.type)
    if event.type == "agent.created":
        if state is not None:
            raise CorruptStreamError(f"{event.stream}: agent.created at version {event.version}")
        created = msgspec.convert(event.data, AgentCreated)
        return Agent(
            id=created.agent_id,
            namespace=event.namespace,
            spec=created.spec,
            state=AgentState.CREATED,
            version=event.version,
            created_at=event.time,
            updated_at=event.time,
        )
    if state is None:
        if payload_type is None:
            return None
        raise CorruptStreamError(f"{event.stream}: {event.type} before agent.created")
    bump: dict[str, Any] = {"version": event.version, "updated_at": event.time}
    if event.type == "agent.updated":
        bump["spec"] = msgspec.convert(event.data, AgentUpdated).spec
    elif event.type == "agent.state_changed":
        bump["state"] = msgspec.convert(event.data, AgentStateChanged).to_state
    elif event.type == "agent.deleted":
        bump["deleted"] = True
    else:
        del bump["updated_at"]  # not a change this aggregate knows about
    return msgspec.structs.replace(state, **bump)
