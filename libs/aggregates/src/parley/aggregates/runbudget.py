"""A group run's budget: when the usage its agents report exceeds it, or nears it.

Pure; the group-run aggregate (:mod:`parley.aggregates.grouprun`) calls it after each answer.
"""

from typing import Literal

from parley.contracts.registry import Budget
from parley.contracts.tasks import RunBudgetWarning

__all__ = ["WARNING_RATIO", "budget_warning", "over_budget"]

WARNING_RATIO = 0.8
"""Share of a run budget's limit at which `grouprun.budget_warning` is recorded."""


def over_budget(budget: Budget | None, tokens: float, cost: float) -> str | None:
    """Why the run is over ``budget`` having spent ``tokens`` and ``cost``, if it is."""
    if budget is None:
        return None
    if budget.max_tokens is not None and tokens > budget.max_tokens:
        return f"budget exceeded: {tokens:g} tokens of {budget.max_tokens}"
    if budget.max_cost_usd is not None and cost > budget.max_cost_usd:
        return f"budget exceeded: ${cost:g} of ${budget.max_cost_usd:g}"
    return None


def budget_warning(
    run_id: str, budget: Budget | None, tokens: float, cost: float
) -> RunBudgetWarning | None:
    """The first limit of ``budget`` the run has spent 80 % of, if any."""
    if budget is None:
        return None
    limits: tuple[tuple[Literal["tokens", "cost"], float, float | None], ...] = (
        ("tokens", tokens, budget.max_tokens),
        ("cost", cost, budget.max_cost_usd),
    )
    for kind, used, limit in limits:
        if limit is not None and used >= WARNING_RATIO * limit:
            return RunBudgetWarning(
                run_id=run_id, kind=kind, used=used, limit=limit, ratio=round(used / limit, 4)
            )
    return None
