"""Budgets against their streams ``budget-<agent id>``: check before a call, settle after.

The fold and the decider are :mod:`parley.aggregates.budget`; runtimes settling the same
agent at once serialise on the stream's expected version through the repository.
"""

from collections.abc import Sequence

from parley.aggregates.budget import BudgetState
from parley.aggregates.budget import Consume
from parley.aggregates.budget import decide
from parley.aggregates.budget import evolve
from parley.aggregates.budget import exhausted
from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.registry import Budget
from parley.contracts.runtime import Usage
from parley.contracts.runtime import budget_stream
from parley.eventstore import EventStore
from parley.eventstore.repository import Repository

__all__ = ["BudgetKeeper"]

_SOURCE = "/parley/runtime"


class BudgetKeeper:
    """Checks and settles agents' budgets against their streams (cached between calls)."""

    def __init__(self, store: EventStore) -> None:
        self.repository: Repository[BudgetState] = Repository(store, evolve)

    async def refusal(self, agent_id: str, budget: Budget | None) -> str | None:
        """Why the agent may not call a model now, or None."""
        if budget is None:
            return None
        loaded = await self.repository.load(budget_stream(agent_id))
        return exhausted(loaded.state, budget, utcnow())

    async def settle(
        self, agent_id: str, budget: Budget | None, usage: Usage, namespace: str
    ) -> Sequence[str]:
        """Record one call's usage; return the threshold events it emitted."""
        if budget is None:
            return ()
        ctx = Context(utcnow())
        command = Consume(agent_id=agent_id, budget=budget, usage=usage)
        emitted: list[str] = []

        def decide_now(state: BudgetState | None) -> list[NewEvent]:
            events = decide(state, command, ctx).events
            emitted[:] = [kind for kind, _ in events[1:]]
            return to_new_events(
                events, subject=agent_id, namespace=namespace, source=_SOURCE, now=ctx.now
            )

        await self.repository.execute(budget_stream(agent_id), decide_now)
        return emitted
