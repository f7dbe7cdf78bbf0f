"""An agent's budget, folded from its stream ``budget-<agent id>``, and its decider.

Each model call's usage is settled as ``budget.consumed``; ``budget.warning`` is emitted
once per period when a limit reaches 80 %, ``budget.critical`` when it reaches 100 %; from
then on :func:`exhausted` says why the agent's calls are refused.
"""

from datetime import datetime
from typing import Literal

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.decision import to_new_events
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.registry import Budget
from parley.contracts.runtime import EVENT_TYPES
from parley.contracts.runtime import BudgetConsumed
from parley.contracts.runtime import BudgetThreshold
from parley.contracts.runtime import Usage
from parley.contracts.runtime import budget_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "WARNING_RATIO",
    "BudgetState",
    "Consume",
    "decide",
    "decide_consume",
    "evolve",
    "exhausted",
    "period_of",
]

CATEGORY = budget_stream.category
"""The stream category this aggregate folds (``budget-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "budget")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

WARNING_RATIO = 0.8
SOURCE = "/parley/runtime"


class BudgetState(msgspec.Struct, frozen=True):
    """Spend in the current period, and the thresholds already announced in it."""

    period: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    announced: frozenset[str] = frozenset()


class Consume(msgspec.Struct, frozen=True, kw_only=True):
    """Settle one call's usage against the agent's budget."""

    agent_id: str
    budget: Budget
    usage: Usage


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
        return msgspec.structs.replace(
            state, tokens=consumed.total_tokens, cost_usd=consumed.total_cost_usd
        )
    if event.type in ("budget.warning", "budget.critical"):
        mark = f"{event.type}:{event.data['kind']}"
        return msgspec.structs.replace(state, announced=state.announced | {mark})
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


def decide(state: BudgetState | None, command: Consume, ctx: Context) -> Decision[None]:
    """Settle ``usage``: one ``budget.consumed``, plus each threshold it crosses first."""
    agent_id, budget, usage = command.agent_id, command.budget, command.usage
    period = period_of(budget, ctx.now)
    state = state if state is not None and state.period == period else BudgetState(period)
    tokens = state.tokens + usage.input_tokens + usage.output_tokens
    cost = round(state.cost_usd + usage.cost_usd, 8)
    consumed = BudgetConsumed(
        agent_id=agent_id, period=period, usage=usage, total_tokens=tokens, total_cost_usd=cost
    )
    events: Decided = [("budget.consumed", consumed)]
    limits: tuple[tuple[Literal["tokens", "cost"], float, float | None], ...] = (
        ("tokens", tokens, budget.max_tokens),
        ("cost", cost, budget.max_cost_usd),
    )
    for kind, used, limit in limits:
        if limit is None:
            continue
        for level, ratio in (("budget.warning", WARNING_RATIO), ("budget.critical", 1.0)):
            if used >= limit * ratio and f"{level}:{kind}" not in state.announced:
                threshold = BudgetThreshold(
                    agent_id=agent_id,
                    period=period,
                    kind=kind,
                    used=used,
                    limit=limit,
                    ratio=round(used / limit, 4),
                )
                events.append((level, threshold))
    return Decision(events)


def decide_consume(
    state: BudgetState | None,
    agent_id: str,
    budget: Budget,
    usage: Usage,
    now: datetime,
    namespace: str = "default",
) -> list[NewEvent]:
    """:func:`decide` for one call's usage, as envelopes ready to append."""
    decision = decide(state, Consume(agent_id=agent_id, budget=budget, usage=usage), Context(now))
    return to_new_events(
        decision.events, subject=agent_id, namespace=namespace, source=SOURCE, now=now
    )
