"""The agent, folded from its stream ``agent-<id>``, and its decider.

The registry decides with :func:`decide`; the edge's projection shows what :func:`evolve`
folds. One fold, so the two never disagree. Both are pure: time comes in through
:class:`~parley.aggregates.decision.Context`.
"""

from datetime import datetime
from typing import Any
from typing import Never

import msgspec

from parley.aggregates.agent_spec import validate_spec
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.decision import check_expected
from parley.aggregates.fold import CorruptStreamError
from parley.aggregates.fold import Folded
from parley.aggregates.fold import born
from parley.aggregates.fold import created
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import EVENT_TYPES
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import AgentCreated
from parley.contracts.registry import AgentDeleted
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.contracts.registry import AgentStateChanged
from parley.contracts.registry import AgentUpdated
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import RegistryCommand
from parley.contracts.registry import UpdateAgent
from parley.contracts.registry import agent_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "TRANSITIONS",
    "Agent",
    "CorruptStreamError",
    "allowed_actions",
    "apply_patch",
    "decide",
    "evolve",
    "name_change",
]

CATEGORY = agent_stream.category
"""The stream category this aggregate folds (``agent-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "agent")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

_S, _A = AgentState, AgentAction
TRANSITIONS: dict[tuple[AgentState, AgentAction], AgentState] = {
    (_S.CREATED, _A.START): _S.RUNNING,
    (_S.CREATED, _A.STOP): _S.STOPPED,
    (_S.RUNNING, _A.PAUSE): _S.PAUSED,
    (_S.PAUSED, _A.RESUME): _S.RUNNING,
    (_S.RUNNING, _A.STOP): _S.STOPPED,
    (_S.PAUSED, _A.STOP): _S.STOPPED,
    (_S.CREATED, _A.FAIL): _S.FAILED,
    (_S.RUNNING, _A.FAIL): _S.FAILED,
    (_S.PAUSED, _A.FAIL): _S.FAILED,
}
"""Every legal ``(state, action) → state``; anything else is ``INVALID_STATE_TRANSITION``."""

_FORCED: dict[tuple[AgentState, AgentAction], AgentState] = {(_S.FAILED, _A.STOP): _S.STOPPED}
"""Extra transitions allowed only with ``force=True``."""

# Setting one of these replaces the other: they are two ways to give the system prompt, and a
# patch has no way to send an explicit null (None means "leave as is").
_EXCLUSIVE = {"system_prompt": "persona", "persona": "system_prompt"}


class Agent(Folded, frozen=True, kw_only=True):
    """An agent as folded from its stream."""

    id: str
    """The agent id (the stream is ``agent-<id>``)."""
    spec: AgentSpec
    """The current definition."""
    state: AgentState
    """Lifecycle state."""
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
        create = created(event, AgentCreated, exists=state is not None)
        return Agent(
            id=create.agent_id,
            spec=create.spec,
            state=AgentState.CREATED,
            updated_at=event.time,
            **born(event),
        )
    if state is None:
        if payload_type is None:
            return None
        raise CorruptStreamError.before(event, "agent.created")
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


# --- decide --------------------------------------------------------------------------------


def decide(state: Agent | None, command: RegistryCommand, ctx: Context) -> Decision[Never]:
    """Decide the events a command causes.

    An update that changes nothing decides no events: a retried or redundant ``PATCH`` is a
    no-op and the agent keeps its version. Every update that changes something is one
    ``agent.updated`` event, i.e. one new version.

    Args:
        state: The agent folded from its stream, or None if the stream is empty.
        command: A create, update, lifecycle action or delete.
        ctx: Decision time and ids. The current rules depend on neither; they are part of the
            signature so time-based rules (cool-downs, expiry) do not change every caller.

    Returns:
        The events to append (``(type, payload)`` pairs, possibly none); no effects.

    Raises:
        ParleyError: ``AGENT_ALREADY_EXISTS`` (create on an existing id, deleted or not: ids
            are never reused), ``AGENT_NOT_FOUND`` (missing, deleted, or in another
            namespace), ``CONCURRENCY_CONFLICT``, ``INVALID_STATE_TRANSITION``,
            ``INVALID_REQUEST`` (create without an id), or a validation code.
    """
    del ctx
    return Decision(_decided(state, command))


def _decided(state: Agent | None, command: RegistryCommand) -> Decided:
    if isinstance(command, CreateAgent):
        return _create(command, state)
    agent = _live(state, command.agent_id, command.namespace)
    check_expected(f"agent {agent.id}", command.expected_version, agent.version)
    if isinstance(command, UpdateAgent):
        return _update(command, agent)
    if isinstance(command, AgentActionCommand):
        return _act(command, agent)
    if isinstance(command, DeleteAgent):
        return [
            (
                "agent.deleted",
                AgentDeleted(agent_id=agent.id, name=agent.spec.name, reason=command.reason),
            )
        ]
    raise TypeError(f"not a registry command: {type(command).__name__}")


def allowed_actions(state: AgentState, *, force: bool = False) -> list[AgentAction]:
    """The lifecycle actions legal from ``state``, in declaration order."""
    table = {**TRANSITIONS, **_FORCED} if force else TRANSITIONS
    return [action for action in AgentAction if (state, action) in table]


def apply_patch(spec: AgentSpec, patch: AgentPatch) -> tuple[AgentSpec, list[str]]:
    """Apply a partial update.

    Fields present in the patch replace the definition's, except ``labels``, which merge (a
    null value removes the key). Setting ``system_prompt`` clears ``persona`` and vice versa.

    Returns:
        The new definition and the names of the fields that actually changed, sorted.
    """
    changes: dict[str, Any] = {}
    for field in patch.__struct_fields__:
        value = getattr(patch, field)
        if value is None:
            continue
        if field == "labels":
            merged = dict(spec.labels)
            for key, label in value.items():
                if label is None:
                    merged.pop(key, None)
                else:
                    merged[key] = label
            value = merged
        changes[field] = value
        other = _EXCLUSIVE.get(field)
        if other is not None and getattr(patch, other) is None:
            changes[other] = None
    changed = sorted(f for f, v in changes.items() if getattr(spec, f) != v)
    if not changed:
        return spec, []
    return msgspec.structs.replace(spec, **{f: changes[f] for f in changed}), changed


def name_change(state: Agent, decided: Decided) -> tuple[str, str] | None:
    """``(old name, new name)`` if the decided events rename the agent, else None.

    The handler claims the new name before appending and releases the old one after.
    """
    for event_type, payload in decided:
        if event_type == "agent.updated" and isinstance(payload, AgentUpdated):
            if payload.spec.name != state.spec.name:
                return state.spec.name, payload.spec.name
    return None


def _create(command: CreateAgent, state: Agent | None) -> Decided:
    if command.agent_id is None:
        raise ParleyError(
            ErrorCode.INVALID_REQUEST, "create needs an agent_id; the handler assigns one"
        )
    if state is not None:
        raise ParleyError(
            ErrorCode.AGENT_ALREADY_EXISTS,
            f"agent {command.agent_id} already exists; use a new id or update it",
            {"agent_id": command.agent_id},
        )
    validate_spec(command.spec)
    return [("agent.created", AgentCreated(agent_id=command.agent_id, spec=command.spec))]


def _live(state: Agent | None, agent_id: str, namespace: str) -> Agent:
    # Another namespace's agent is reported missing, never forbidden: ids must not leak.
    if state is None or state.deleted or state.namespace != namespace:
        raise ParleyError(
            ErrorCode.AGENT_NOT_FOUND,
            f"no agent {agent_id} in namespace {namespace}",
            {"agent_id": agent_id},
        )
    return state


def _update(command: UpdateAgent, agent: Agent) -> Decided:
    spec, changed = apply_patch(agent.spec, command.patch)
    if not changed:
        return []
    validate_spec(spec)
    return [("agent.updated", AgentUpdated(agent_id=agent.id, spec=spec, changed=changed))]


def _act(command: AgentActionCommand, agent: Agent) -> Decided:
    key = (agent.state, command.action)
    target = TRANSITIONS.get(key) or (_FORCED.get(key) if command.force else None)
    if target is None:
        allowed = allowed_actions(agent.state, force=command.force)
        hint = ""
        if _FORCED.get(key) is not None:
            hint = "; set force=true to allow it"
        raise ParleyError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"cannot {command.action.value} an agent that is {agent.state.value}{hint}",
            {
                "from": agent.state.value,
                "action": command.action.value,
                "allowed_actions": [a.value for a in allowed],
            },
        )
    changed = AgentStateChanged(
        agent_id=agent.id,
        from_state=agent.state,
        to_state=target,
        action=command.action,
        reason=command.reason,
    )
    return [("agent.state_changed", changed)]
