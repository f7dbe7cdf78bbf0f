"""The agents projection: every live agent as an :class:`AgentView`, folded from events.

It subscribes from position 0 at start (a rebuild; the store is the checkpoint), keeps
``applied_position`` and wakes read-your-writes waiters as positions are applied (the shared
machinery is :class:`~parley.edge.projections._base.LiveProjection`). Non-agent events only
advance the position.
"""

from collections.abc import Callable
from collections.abc import Iterable

from parley.aggregates.agent import Agent
from parley.aggregates.agent import evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import AgentView
from parley.edge.projections._base import LiveProjection
from parley.edge.views import as_view
from parley.edge.views import iso

__all__ = ["AgentsProjection"]


class AgentsProjection(LiveProjection[Agent, AgentView]):
    """Live agents by namespace and id, with a position waiters can wait for."""

    prefix = "agent-"
    name = "agents-projection"

    def get(self, namespace: str, agent_id: str) -> AgentView | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        return self._get(namespace, agent_id)

    def agents(self, namespace: str) -> Iterable[AgentView]:
        """Every live agent of ``namespace``, in no particular order."""
        return self._entries(namespace)

    def namespaces(self) -> list[str]:
        """Every namespace that has live agents."""
        return [namespace for namespace, live in self._live.items() if live]

    def find(self, namespace: str, predicate: Callable[[AgentView], bool]) -> list[AgentView]:
        """The live agents of ``namespace`` for which ``predicate`` holds."""
        return [view for view in self.agents(namespace) if predicate(view)]

    def _evolve(self, state: Agent | None, event: Event) -> Agent | None:
        return evolve(state, event)

    def _entry(self, agent: Agent) -> tuple[str, AgentView | None]:
        if agent.deleted:
            return agent.id, None
        created, updated = iso(agent.created_at), iso(agent.updated_at)
        return agent.id, as_view(
            AgentView,
            agent,
            created_at=created,
            updated_at=updated,
            name=agent.spec.name,
            status=agent.state,
            capabilities=agent.spec.capabilities,
        )
