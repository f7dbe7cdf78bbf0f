"""The runtime's view of agents: definitions and lifecycle states, folded from events.

It reads every stream (skipping non-agent events after one string check) so its position
can be compared with the edge's: a command carrying ``min_position`` waits until this view
has caught up with what the caller saw.
"""

from parley.aggregates.agent import Agent, evolve
from parley.contracts.envelope import Event
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["AgentDirectory"]


class AgentDirectory(Follower):
    """Live agents by id."""

    name = "runtime-agents"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._agents: dict[str, Agent] = {}

    def fold(self, event: Event) -> None:
        """Fold agent events; skip the rest."""
        if not event.stream.startswith("agent-"):
            return
        agent = evolve(self._agents.get(event.subject), event)
        if agent is not None:
            self._agents[agent.id] = agent

    def get(self, agent_id: str) -> Agent | None:
        """The agent, unless unknown or deleted."""
        agent = self._agents.get(agent_id)
        return None if agent is None or agent.deleted else agent

    def agents(self) -> list[Agent]:
        """Every live agent."""
        return [a for a in self._agents.values() if not a.deleted]
