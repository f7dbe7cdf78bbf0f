"""Budgets: each model call's usage settled on ``budget-<agent id>``, thresholds as events.

The fold and the decider are pure. :class:`BudgetKeeper` runs them through the kernel, so
runtimes settling the same agent at once serialise on the stream's expected version.
``budget.warning`` is emitted once per period when a limit reaches 80 %, ``budget.critical``
when it reaches 100 %; from then on the agent's calls are refused with ``BUDGET_EXCEEDED``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import msgspec

from parley.contracts.envelope import Event, NewEvent, utcnow
from parley.contracts.registry import Budget
from parley.contracts.runtime import BudgetConsumed, BudgetThreshold, Usage, budget_stream
from parley.eventstore import EventStore
from parley.eventstore.kernel import Loaded, execute, load

__all__ = ["BudgetKeeper", "BudgetState", "decide_consume", "evolve", "exhausted", "period_of"]

WARNING_RATIO = 0.8
_SOURCE = "/parley/runtime"


@dataclass(frozen=True)
class BudgetState:
    """Spend in the current period, and the thresholds already announced in it."""

    period: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    announced: frozenset[str] = field(default_factory=frozenset)


def period_of(budget: Budget, now: datetime) -> str:
    """The period a moment falls in: ``total``, a day ``2026-11-23`` or a month ``2026-11``."""
    if budget.period == "day":
        return now.strftime("%Y-%m-%d")
    if budget.period == "month":
        return now.strftime("%Y-%m")
    return "total"


def evolve(state: BudgetState | None, event: Event) -> BudgetState:
    """Fold one budget event."""
    state = state or BudgetState()
    period = event.data.get("period", "")
    if period != state.period:
        state = BudgetState(period=period)
    if event.type == "budget.consumed":
        consumed = msgspec.convert(event.data, BudgetConsumed)
        return replace(state, tokens=consumed.total_tokens, cost_usd=consumed.total_cost_usd)
    if event.type in ("budget.warning", "budget.critical"):
        mark = f"{event.type}:{event.data['kind']}"
        return replace(state, announced=state.announced | {mark})
    return state


def exhausted(state: BudgetState | None, budget: Budget | None, now: datetime) -> str | None:
    """Why calls are refused, or None while the budget lasts."""
    if budget is None or state is None or state.period != period_of(budget, now):
        return None
    if budget.max_tokens is not None and state.tokens >= budget.max_tokens:
        return f"token budget of {budget.max_tokens} spent ({state.tokens} used, {budget.period})"
    if budget.max_cost_usd is not None and state.cost_usd >= budget.max_cost_usd:
        return (
            f"cost budget of ${budget.max_cost_usd:g} spent "
            f"(${state.cost_usd:.6f} used, {budget.period})"
        )
    return None


def decide_consume(
    state: BudgetState | None,
    agent_id: str,
    budget: Budget,
    usage: Usage,
    now: datetime,
    namespace: str = "default",
) -> list[NewEvent]:
    """Settle ``usage``: one ``budget.consumed``, plus each threshold it crosses first."""
    period = period_of(budget, now)
    state = state if state is not None and state.period == period else BudgetState(period)
    tokens = state.tokens + usage.input_tokens + usage.output_tokens
    cost = round(state.cost_usd + usage.cost_usd, 8)
    payloads: list[tuple[str, msgspec.Struct]] = [
        (
            "budget.consumed",
            BudgetConsumed(
                agent_id=agent_id,
                period=period,
                usage=usage,
                total_tokens=tokens,
                total_cost_usd=cost,
            ),
        )
    ]
    limits = (("tokens", tokens, budget.max_tokens), ("cost", cost, budget.max_cost_usd))
    for kind, used, limit in limits:
        if limit is None:
            continue
        for level, ratio in (("budget.warning", WARNING_RATIO), ("budget.critical", 1.0)):
            if used >= limit * ratio and f"{level}:{kind}" not in state.announced:
                payloads.append(
                    (
                        level,
                        BudgetThreshold(
                            agent_id=agent_id,
                            period=period,
                            kind=kind,
                            used=used,
                            limit=limit,
                            ratio=round(used / limit, 4),
                        ),
                    )
                )
    return [
        NewEvent(
            type=kind,
            subject=agent_id,
            data=msgspec.to_builtins(payload),
            namespace=namespace,
            source=_SOURCE,
            time=now,
        )
        for kind, payload in payloads
    ]


class BudgetKeeper:
    """Checks and settles agents' budgets against their streams (cached between calls)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._cache: dict[str, Loaded[BudgetState]] = {}

    async def refusal(self, agent_id: str, budget: Budget | None) -> str | None:
        """Why the agent may not call a model now, or None."""
        if budget is None:
            return None
        loaded = self._cache.get(agent_id)
        if loaded is None:
            loaded = await load(self.store, budget_stream(agent_id), evolve)
            self._cache[agent_id] = loaded
        return exhausted(loaded.state, budget, utcnow())

    async def settle(
        self, agent_id: str, budget: Budget | None, usage: Usage, namespace: str
    ) -> Sequence[str]:
        """Record one call's usage; return the threshold events it emitted."""
        if budget is None:
            return ()
        now = utcnow()
        emitted: list[str] = []

        def decide(state: BudgetState | None) -> list[NewEvent]:
            events = decide_consume(state, agent_id, budget, usage, now, namespace)
            emitted[:] = [e.type for e in events[1:]]
            return events

        outcome = await execute(
            self.store,
            budget_stream(agent_id),
            decide,
            evolve,
            loaded=self._cache.get(agent_id),
        )
        self._cache[agent_id] = Loaded(outcome.state, outcome.version, outcome.position)
        return emitted
