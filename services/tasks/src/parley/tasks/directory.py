"""The directory facilitator: which agents a task or run may address, folded from the store.

Every lookup takes the namespace first, then what is looked up in it (``get(namespace,
agent_id)``, ``match(namespace, capabilities, min_score)``), as the edge's projections do.
Agents (definition, lifecycle state, namespace) come from ``agent-*`` streams; each agent's
performance score is its success rate over finished runs — ``turn.completed`` and
``execution.completed`` count as successes, ``turn.failed`` and ``execution.failed`` as
failures (``data.agent_id`` names the agent) — and 1.0 before its first.
"""

from collections.abc import Sequence

from parley.aggregates.agent import Agent
from parley.aggregates.agent import evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import AgentState
from parley.contracts.tasks import VIEWED
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["Directory"]

_OUTCOMES = {
    "turn.completed": True,
    "execution.completed": True,
    "turn.failed": False,
    "execution.failed": False,
}


class Directory(Follower):
    """Agents by id, with their success counts (an :class:`~parley.tasks.domain.AgentLookup`)."""

    name = "tasks-directory"
    categories = VIEWED

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._agents: dict[str, Agent] = {}
        self._runs: dict[str, list[int]] = {}
        """Agent id → [finished, succeeded]."""

    def fold(self, event: Event) -> None:
        """Fold agent events and run outcomes; skip the rest."""
        if event.stream.startswith("agent-"):
            agent = evolve(self._agents.get(event.subject), event)
            if agent is not None:
                self._agents[agent.id] = agent
            return
        ok = _OUTCOMES.get(event.type)
        agent_id = event.data.get("agent_id") if ok is not None else None
        if isinstance(agent_id, str):
            counts = self._runs.setdefault(agent_id, [0, 0])
            counts[0] += 1
            counts[1] += int(ok is True)

    def get(self, namespace: str, agent_id: str) -> Agent | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.deleted or agent.namespace != namespace:
            return None
        return agent

    def score(self, agent_id: str) -> float:
        """The agent's success rate (1.0 with no finished run)."""
        finished, succeeded = self._runs.get(agent_id, (0, 0))
        return succeeded / finished if finished else 1.0

    def match(
        self, namespace: str, capabilities: Sequence[str], min_score: float = 0.0
    ) -> list[str]:
        """Running agents of ``namespace`` with every capability and at least ``min_score``.

        Oldest first (in the order they were created).
        """
        wanted = set(capabilities)
        return [
            agent.id
            for agent in self._agents.values()
            if not agent.deleted
            and agent.namespace == namespace
            and agent.state is AgentState.RUNNING
            and wanted <= set(agent.spec.capabilities)
            and self.score(agent.id) >= min_score
        ]
