"""The namespace's daily spend: folded from its day's stream, refused once at the quota."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.spend import Record
from parley.aggregates.spend import SpendState
from parley.aggregates.spend import decide
from parley.aggregates.spend import evolve
from parley.aggregates.spend import over_quota
from parley.contracts.envelope import Event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STREAM = "spend-team-20261127"


def _record(state: SpendState | None, cost: float, version: int) -> tuple[SpendState, Event]:
    decision = decide(state, Record(namespace="team", agent_id="a1", cost_usd=cost), Context(NOW))
    [(kind, payload)] = decision.events
    event = Event(
        id=f"e{version}",
        source="/parley/runtime",
        type=kind,
        subject="team",
        time=NOW,
        data=msgspec.to_builtins(payload),
        stream=STREAM,
        version=version,
        position=version,
    )
    return evolve(state, event), event


def test_each_call_adds_its_cost_to_the_day_s_total() -> None:
    state, first = _record(None, 0.004, 1)
    state, second = _record(state, 0.003, 2)
    assert first.data["total_cost_usd"] == 0.004
    assert second.data == {
        "namespace": "team",
        "day": "2026-11-27",
        "agent_id": "a1",
        "cost_usd": 0.003,
        "total_cost_usd": 0.007,
    }
    assert state == SpendState(day="2026-11-27", cost_usd=0.007)


def test_calls_are_refused_once_the_spend_reaches_the_quota_and_not_before() -> None:
    state, _ = _record(None, 0.01, 1)
    assert over_quota(state, 0.02, NOW) is None
    assert over_quota(state, 0.01, NOW) == 0.01
    assert over_quota(state, 0, NOW) is None  # no quota
    assert over_quota(None, 0.01, NOW) is None
    assert over_quota(state, 0.01, NOW + timedelta(days=1)) is None  # a new day
