"""An agent's numbered versions, read from its stream: version *n* is its definition after
the *n*-th definition change (``agent.created`` is version 1, each ``agent.updated`` the next).

Pure: the events come from the store (:func:`versions`), folded by the agent aggregate's one
fold (:func:`parley.aggregates.agent.evolve`), so a version is exactly the spec the registry
decided with. :func:`diff` compares two definitions field by field (dotted paths).
"""

from collections.abc import Iterable
from typing import Any

import msgspec

from parley.aggregates.agent import Agent
from parley.aggregates.agent import evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import AgentSpec
from parley.edge.views import iso

__all__ = ["AgentVersion", "FieldChange", "VersionDiff", "diff", "versions"]

_DEFINITION_CHANGES = frozenset({"agent.created", "agent.updated"})


class AgentVersion(msgspec.Struct, kw_only=True):
    """One numbered definition of an agent."""

    version: int
    """1 for the definition it was created with, then one more per change."""
    stream_version: int
    """The agent stream's version at that change (the agent's ETag then)."""
    created_at: str
    """When the change was recorded."""
    changed: list[str]
    """Top-level fields that changed from the previous version (every field for version 1)."""
    actor: str | None = None
    """Who made the change, when recorded."""
    spec: AgentSpec
    """The whole definition."""


class FieldChange(msgspec.Struct, kw_only=True):
    """One field that differs between two versions (``None`` where it is absent)."""

    field: str
    """Dotted path, e.g. ``params.temperature`` or ``labels.team``."""
    before: Any = None
    after: Any = None


class VersionDiff(msgspec.Struct, kw_only=True):
    """The fields that differ from version ``from_version`` to ``to_version``."""

    agent_id: str
    from_version: int
    to_version: int
    changes: list[FieldChange]


def versions(events: Iterable[Event]) -> tuple[Agent | None, list[AgentVersion]]:
    """The agent folded from its stream's ``events`` and every version of its definition."""
    agent: Agent | None = None
    found: list[AgentVersion] = []
    for event in events:
        agent = evolve(agent, event)
        if agent is None or event.type not in _DEFINITION_CHANGES:
            continue
        before = msgspec.to_builtins(found[-1].spec) if found else {}
        after = msgspec.to_builtins(agent.spec)
        found.append(
            AgentVersion(
                version=len(found) + 1,
                stream_version=event.version,
                created_at=iso(event.time),
                changed=sorted(
                    k for k in after.keys() | before.keys() if before.get(k) != after.get(k)
                ),
                actor=event.actor,
                spec=agent.spec,
            )
        )
    return agent, found


def diff(agent_id: str, older: AgentVersion, newer: AgentVersion) -> VersionDiff:
    """Field-level differences from ``older`` to ``newer`` (nested objects by dotted path)."""
    changes: list[FieldChange] = []
    _compare("", msgspec.to_builtins(older.spec), msgspec.to_builtins(newer.spec), changes)
    return VersionDiff(
        agent_id=agent_id,
        from_version=older.version,
        to_version=newer.version,
        changes=changes,
    )


def _compare(path: str, before: Any, after: Any, into: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            _compare(f"{path}.{key}" if path else key, before.get(key), after.get(key), into)
    elif before != after:
        into.append(FieldChange(field=path, before=before, after=after))
