"""The agents projection: every live agent as an :class:`AgentView`, folded from events.

It subscribes from position 0 at start (a rebuild; the store is the checkpoint), keeps
``applied_position`` and wakes read-your-writes waiters as positions are applied (the shared
machinery is :class:`~parley.edge.projections._base.FoldingProjection`). Non-agent events only
advance the position.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from parley.aggregates.agent import Agent, evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import AgentView
from parley.edge.projections._base import FoldingProjection
from parley.eventstore import EventStore

__all__ = ["AgentsProjection", "iso"]


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (`2025-01-02T03:04:05.000006Z`), so it sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AgentsProjection(FoldingProjection):
    """Live agents by namespace and id, with a position waiters can wait for."""

    prefix = "agent-"
    name = "agents-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._agents: dict[str, Agent] = {}
        self._by_ns: dict[str, dict[str, AgentView]] = {}

    def get(self, namespace: str, agent_id: str) -> AgentView | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        return self._by_ns.get(namespace, {}).get(agent_id)

    def agents(self, namespace: str) -> Iterable[AgentView]:
        """Every live agent of ``namespace``, in no particular order."""
        return self._by_ns.get(namespace, {}).values()

    def find(self, namespace: str, predicate: Callable[[AgentView], bool]) -> list[AgentView]:
        """The live agents of ``namespace`` for which ``predicate`` holds."""
        return [view for view in self.agents(namespace) if predicate(view)]

    def _fold(self, event: Event) -> None:
        agent = evolve(self._agents.get(event.subject), event)
        if agent is None:
            return
        self._agents[agent.id] = agent
        views = self._by_ns.setdefault(agent.namespace, {})
        if agent.deleted:
            views.pop(agent.id, None)
        else:
            views[agent.id] = _view(agent)


def _view(agent: Agent) -> AgentView:
    return AgentView(
        id=agent.id,
        namespace=agent.namespace,
        state=agent.state,
        version=agent.version,
        created_at=iso(agent.created_at),
        updated_at=iso(agent.updated_at),
        spec=agent.spec,
    )
