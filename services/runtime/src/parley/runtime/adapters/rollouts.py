"""Which definition of an agent a run uses while a deployment rolls a new one out.

:class:`Rollouts` folds, from the events the agents' view already reads: the deployments
(``deployment-*``, by :func:`parley.aggregates.deployment.evolve`), every agent's definition
changes (to number its versions as ``/agents/{id}/versions`` does) and the starts of turns
and executions that a deployment routed (to learn what another runtime pinned). Each run of
an agent with an active deployment is routed by
:func:`~parley.aggregates.deployment.on_new_version` on its conversation key (the session for
chat turns and ACL messages, the execution, the tendered task for a bid): the first run of a
conversation during the deployment pins it to the version it ran on, so it never changes
version mid-way, and new conversations follow the stage's weights.
"""

from dataclasses import dataclass

import msgspec

from parley.aggregates import deployment
from parley.aggregates.agent import Agent
from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment import on_new_version
from parley.contracts.envelope import Event
from parley.contracts.runtime import RunVersion

__all__ = ["Rollouts", "Routed"]

_DEFINITION_CHANGES = frozenset({"agent.created", "agent.updated"})
_ROUTED_STARTS = {"turn.started": "session_id", "execution.started": "execution_id"}
"""Run starts that carry their version, and the field that is their conversation key."""


@dataclass(frozen=True)
class Routed:
    """The agent as a run sees it (its definition the chosen one) and that version."""

    agent: Agent
    version: RunVersion


class Rollouts:
    """Deployments by agent, agents' definition numbers, and pinned conversations."""

    def __init__(self) -> None:
        self._deployments: dict[tuple[str, str], Deployment] = {}
        self._by_agent: dict[tuple[str, str], Deployment] = {}
        """The latest deployment of each (namespace, agent)."""
        self._changes: dict[str, list[int]] = {}
        """Agent id → the stream version of each definition change (version n at n-1)."""
        self._pins: dict[str, dict[str, bool]] = {}
        """Active deployment id → conversation key → on its new definition."""

    def fold(self, event: Event) -> None:
        """Fold an event the runtime's view reads (every other one is skipped)."""
        if event.type in _DEFINITION_CHANGES:
            self._changes.setdefault(event.subject, []).append(event.version)
        elif event.stream.startswith("deployment-"):
            self._fold_deployment(event)
        elif (key_field := _ROUTED_STARTS.get(event.type)) is not None:
            self._fold_start(event, key_field)

    def route(self, agent: Agent, conversation: str) -> Routed:
        """The definition a run of ``agent`` in ``conversation`` uses, pinning a new one."""
        found = self._by_agent.get((agent.namespace, agent.id))
        current = RunVersion(agent_version=self._number(agent.id), version_label=self._label(agent))
        if found is None or not found.active:
            return Routed(agent, current)
        pins = self._pins.setdefault(found.id, {})
        new = on_new_version(found, conversation, pins.get(conversation))
        pins[conversation] = new
        if new:
            chosen = msgspec.structs.replace(agent, spec=found.spec)
            version = RunVersion(
                agent_version=self._new_number(found),
                version_label=found.version_label,
                deployment_id=found.id,
            )
            return Routed(chosen, version)
        return Routed(agent, current)

    def _fold_deployment(self, event: Event) -> None:
        key = (event.namespace, event.subject)
        state = deployment.evolve(self._deployments.get(key), event)
        if state is None:
            return
        self._deployments[key] = state
        latest = self._by_agent.get((state.namespace, state.agent_id))
        if latest is None or latest.id == state.id or state.created_at >= latest.created_at:
            self._by_agent[(state.namespace, state.agent_id)] = state
        if not state.active:
            self._pins.pop(state.id, None)

    def _fold_start(self, event: Event, key_field: str) -> None:
        """A run another process (or this one) started during a deployment: its pin (on the
        new definition when it names the deployment, else on the current one)."""
        found = self._by_agent.get((event.namespace, event.data.get("agent_id") or ""))
        if found is None or not found.active:
            return
        new = event.data.get("deployment_id") == found.id
        self._pins.setdefault(found.id, {}).setdefault(str(event.data[key_field]), new)

    def _number(self, agent_id: str) -> int | None:
        """The agent's current version number (None if its creation was never seen)."""
        return len(self._changes.get(agent_id, ())) or None

    def _new_number(self, state: Deployment) -> int:
        """The number the deployment's definition becomes: one past the one it started from."""
        changes = self._changes.get(state.agent_id, [])
        return sum(1 for v in changes if v <= state.from_version) + 1

    def _label(self, agent: Agent) -> str | None:
        """The label of the agent's current definition, if a deployment gave it."""
        latest = self._by_agent.get((agent.namespace, agent.id))
        changes = self._changes.get(agent.id)
        if latest is None or latest.status != "completed" or not changes:
            return None
        return latest.version_label if latest.agent_version == changes[-1] else None
