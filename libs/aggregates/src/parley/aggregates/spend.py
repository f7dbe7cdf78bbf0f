"""A namespace's model spend on one UTC day, folded from ``spend-<namespace>-<yyyymmdd>``.

Each priced model call adds ``spend.recorded`` (its cost and the day's total so far); the
daily quota (``PARLEY_QUOTA_DAILY_SPEND_USD``) refuses calls once :func:`over_quota` says so.
A new day is a new stream, so the fold never has to forget anything.
"""

from datetime import datetime

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.contracts.envelope import Event
from parley.contracts.runtime import SpendRecorded

__all__ = ["CATEGORY", "FOLDS", "Record", "SpendState", "day_of", "decide", "evolve", "over_quota"]

CATEGORY = "spend"
"""The stream category this aggregate folds (``spend-<namespace>-<yyyymmdd>``)."""
FOLDS: frozenset[str] = frozenset({"spend.recorded"})
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""


class SpendState(msgspec.Struct, frozen=True):
    """What the namespace spent on models that day, in USD."""

    day: str = ""
    cost_usd: float = 0.0


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Add one model call's cost to its namespace's spend of the day."""

    namespace: str
    agent_id: str | None
    cost_usd: float


def day_of(now: datetime) -> str:
    """The UTC day a moment falls in, as ``2026-11-27``."""
    return now.strftime("%Y-%m-%d")


def evolve(state: SpendState | None, event: Event) -> SpendState:
    """Fold one spend event."""
    state = state or SpendState()
    if event.type == "spend.recorded":
        recorded = msgspec.convert(event.data, SpendRecorded)
        return SpendState(day=recorded.day, cost_usd=recorded.total_cost_usd)
    return state


def over_quota(state: SpendState | None, limit: float, now: datetime) -> float | None:
    """The day's spend when it has reached ``limit`` (no model call may start), else None."""
    if limit <= 0 or state is None or state.day != day_of(now):
        return None
    return state.cost_usd if state.cost_usd >= limit else None


def decide(state: SpendState | None, command: Record, ctx: Context) -> Decision[None]:
    """One ``spend.recorded`` with the day's new total."""
    day = day_of(ctx.now)
    spent = state.cost_usd if state is not None and state.day == day else 0.0
    recorded = SpendRecorded(
        namespace=command.namespace,
        day=day,
        agent_id=command.agent_id,
        cost_usd=command.cost_usd,
        total_cost_usd=round(spent + command.cost_usd, 8),
    )
    return Decision([("spend.recorded", recorded)])
