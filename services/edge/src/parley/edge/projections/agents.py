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
from parley.contracts.models import model_warnings
from parley.contracts.registry import AgentView
from parley.edge.projections._base import LiveProjection
from parley.edge.views import as_view
from parley.edge.views import iso
from parley.eventstore.port import EventStore

__all__ = ["AgentsProjection"]


class AgentsProjection(LiveProjection[Agent, AgentView]):
    """Live agents by namespace and id, with a position waiters can wait for."""

    prefix = "agent-"
    name = "agents-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._names: dict[tuple[str, str], str] = {}
        """The id of each live agent by (namespace, name): names are unique per namespace."""
        self._held: dict[str, tuple[str, str]] = {}
        """The (namespace, name) each agent's stream holds in :attr:`_names`."""

    def get(self, namespace: str, agent_id: str) -> AgentView | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        return self._get(namespace, agent_id)

    def named(self, namespace: str, name: str) -> AgentView | None:
        """The live agent called ``name`` in ``namespace``, if any."""
        agent_id = self._names.get((namespace, name))
        return self._get(namespace, agent_id) if agent_id is not None else None

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

    def _fold(self, event: Event) -> None:
        super()._fold(event)
        agent = self._states.get(event.stream)
        if agent is None:
            return
        held = self._held.pop(event.stream, None)  # the name before this event
        if held is not None and self._names.get(held) == agent.id:
            del self._names[held]
        if not agent.deleted:
            key = self._held[event.stream] = (agent.namespace, agent.spec.name)
            self._names[key] = agent.id

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
            warnings=model_warnings(agent.spec.provider, agent.spec.model),
        )
