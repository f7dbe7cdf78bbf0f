"""Views of the store this process keeps: streams of one category folded by their aggregate.

:class:`AgentDirectory` is the runtime's view of agents (definitions and lifecycle states),
with the deployments that choose which definition each run uses. It reads the categories
:data:`~parley.contracts.runtime.VIEWED` (agents, deployments, and the run starts that pin
a conversation to a version): a command carrying ``min_position`` (the newest event of
those the caller saw) waits until this view has caught up with it.
"""

from collections.abc import Callable
from typing import Generic
from typing import TypeVar

from parley.aggregates import agent
from parley.aggregates.agent import Agent
from parley.contracts.envelope import Event
from parley.contracts.runtime import VIEWED
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower
from parley.runtime.adapters.rollouts import Rollouts
from parley.runtime.adapters.rollouts import Routed

__all__ = ["AgentDirectory", "Folded"]

S = TypeVar("S")


class Folded(Follower, Generic[S]):
    """The streams ``<category>-<id>`` folded by ``evolve``, by id (the events' subject)."""

    def __init__(
        self, store: EventStore, category: str, evolve: Callable[[S | None, Event], S | None]
    ) -> None:
        super().__init__(store)
        self.prefix, self.evolve = f"{category}-", evolve
        self.states: dict[str, S] = {}

    def fold(self, event: Event) -> None:
        """Fold an event of the category; skip the rest."""
        if not event.stream.startswith(self.prefix):
            return
        state = self.evolve(self.states.get(event.subject), event)
        if state is not None:
            self.states[event.subject] = state


class AgentDirectory(Folded[Agent]):
    """Live agents by id, and which definition each run of them uses (:attr:`rollouts`)."""

    name = "runtime-agents"
    categories = VIEWED

    def __init__(self, store: EventStore) -> None:
        super().__init__(store, "agent", agent.evolve)
        self.rollouts = Rollouts()

    def fold(self, event: Event) -> None:
        """Fold an agent's event, and what routing runs by deployment needs."""
        super().fold(event)
        self.rollouts.fold(event)

    def route(self, found: Agent, conversation: str) -> Routed:
        """The definition a run of ``found`` in ``conversation`` uses (see :mod:`.rollouts`)."""
        return self.rollouts.route(found, conversation)

    def get(self, agent_id: str) -> Agent | None:
        """The agent, unless unknown or deleted."""
        found = self.states.get(agent_id)
        return None if found is None or found.deleted else found

    def agents(self) -> list[Agent]:
        """Every live agent."""
        return [a for a in self.states.values() if not a.deleted]
