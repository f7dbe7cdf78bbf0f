"""The agent aggregate and the agent-name claim, as pure functions (no I/O).

``decide(command, state)`` returns the events a command causes as ``(type, payload)`` pairs,
or raises :class:`DomainError`; ``evolve(state, event)`` folds one recorded event into state.
Handlers load a stream, fold it with ``evolve``, ``decide``, and append with the expected
version; :func:`as_new_events` turns decided pairs into envelopes.

Names are unique per namespace through a second aggregate on ``name_stream(ns, name)``:
the handler claims a name (:func:`decide_claim`) before creating or renaming an agent and
releases it (:func:`decide_release`) after a delete or a rename.
"""

from datetime import datetime
from typing import Any

import msgspec

from parley.aggregates.agent import Agent, CorruptStreamError, evolve
from parley.contracts.envelope import Event, NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import (
    AgentAction,
    AgentActionCommand,
    AgentCreated,
    AgentDeleted,
    AgentNameClaimed,
    AgentNameReleased,
    AgentPatch,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    AgentUpdated,
    CreateAgent,
    DeleteAgent,
    RegistryCommand,
    UpdateAgent,
)
from parley.registry._errors import DomainError, RegistryError
from parley.registry.validation import validate_spec

__all__ = [
    "TRANSITIONS",
    "Agent",
    "CorruptStreamError",
    "Decided",
    "DomainError",
    "NameClaim",
    "RegistryError",
    "allowed_actions",
    "apply_patch",
    "as_new_events",
    "decide",
    "decide_claim",
    "decide_release",
    "evolve",
    "evolve_claim",
    "name_change",
]

Decided = list[tuple[str, msgspec.Struct]]
"""What a decider returns: ``(event type, payload)`` pairs, in append order."""

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


# --- decide --------------------------------------------------------------------------------


def decide(command: RegistryCommand, state: Agent | None, *, now: datetime) -> Decided:
    """Decide the events a command causes.

    An update that changes nothing decides no events: a retried or redundant ``PATCH`` is a
    no-op and the agent keeps its version. Every update that changes something is one
    ``agent.updated`` event, i.e. one new version.

    Args:
        command: A create, update, lifecycle action or delete.
        state: The agent folded from its stream, or None if the stream is empty.
        now: Decision time. The current rules do not depend on it; it is part of the
            signature so time-based rules (cool-downs, expiry) do not change every caller.

    Returns:
        ``(event type, payload)`` pairs to append, possibly none.

    Raises:
        DomainError: ``AGENT_ALREADY_EXISTS`` (create on an existing id, deleted or not: ids
            are never reused), ``AGENT_NOT_FOUND`` (missing, deleted, or in another
            namespace), ``CONCURRENCY_CONFLICT``, ``INVALID_STATE_TRANSITION``,
            ``INVALID_REQUEST`` (create without an id), or a validation code.
    """
    del now
    if isinstance(command, CreateAgent):
        return _create(command, state)
    agent = _live(state, command.agent_id, command.namespace)
    if command.expected_version is not None and command.expected_version != agent.version:
        raise DomainError(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"agent {agent.id} is at version {agent.version}, not {command.expected_version};"
            " read it again and retry",
            {"expected": command.expected_version, "actual": agent.version},
        )
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


def as_new_events(
    decided: Decided,
    *,
    subject: str,
    namespace: str,
    now: datetime,
    correlationid: str | None = None,
    traceparent: str | None = None,
) -> list[NewEvent]:
    """Wrap decided ``(type, payload)`` pairs in envelopes ready to append."""
    return [
        NewEvent(
            type=event_type,
            subject=subject,
            data=msgspec.to_builtins(payload),
            namespace=namespace,
            source="/parley/registry",
            time=now,
            correlationid=correlationid,
            traceparent=traceparent,
        )
        for event_type, payload in decided
    ]


def _create(command: CreateAgent, state: Agent | None) -> Decided:
    if command.agent_id is None:
        raise DomainError(
            ErrorCode.INVALID_REQUEST, "create needs an agent_id; the handler assigns one"
        )
    if state is not None:
        raise DomainError(
            ErrorCode.AGENT_ALREADY_EXISTS,
            f"agent {command.agent_id} already exists; use a new id or update it",
            {"agent_id": command.agent_id},
        )
    validate_spec(command.spec)
    return [("agent.created", AgentCreated(agent_id=command.agent_id, spec=command.spec))]


def _live(state: Agent | None, agent_id: str, namespace: str) -> Agent:
    # Another namespace's agent is reported missing, never forbidden: ids must not leak.
    if state is None or state.deleted or state.namespace != namespace:
        raise DomainError(
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
        raise DomainError(
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


# --- name claims ---------------------------------------------------------------------------


class NameClaim(msgspec.Struct, frozen=True, kw_only=True):
    """Who holds an agent name in a namespace (stream ``name_stream(ns, name)``)."""

    holder: str | None = None
    """Id of the agent holding the name, or None if it is free."""
    version: int = 0
    """Stream version of the last folded event."""


def evolve_claim(state: NameClaim | None, event: Event) -> NameClaim:
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


def decide_claim(
    state: NameClaim | None, agent_id: str, *, name: str, namespace: str, agent_exists: bool
) -> Decided:
    """Claim ``name`` for ``agent_id``.

    Args:
        state: The claim folded from its stream, or None if the stream is empty.
        agent_id: The agent that wants the name.
        name: The name (for the event and the error message).
        namespace: The namespace (for the error message).
        agent_exists: Whether the *current holder's* agent is live (its stream exists and it
            is not deleted). A claim whose holder never got created (a crash between claim
            and create) or was deleted without releasing is taken over.

    Returns:
        One ``agent_name.claimed`` event, or none if ``agent_id`` already holds the name (an
        idempotent retry).

    Raises:
        DomainError: ``AGENT_ALREADY_EXISTS`` if a live agent holds the name.
    """
    holder = state.holder if state is not None else None
    if holder == agent_id:
        return []
    if holder is not None and agent_exists:
        raise DomainError(
            ErrorCode.AGENT_ALREADY_EXISTS,
            f"an agent named {name!r} already exists in namespace {namespace}",
            {"name": name, "namespace": namespace, "agent_id": holder},
        )
    return [("agent_name.claimed", AgentNameClaimed(name=name, agent_id=agent_id))]


def decide_release(state: NameClaim | None, agent_id: str, *, name: str) -> Decided:
    """Release ``name`` held by ``agent_id``; a no-op if ``agent_id`` does not hold it."""
    if state is None or state.holder != agent_id:
        return []
    return [("agent_name.released", AgentNameReleased(name=name, agent_id=agent_id))]
