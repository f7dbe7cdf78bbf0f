"""Pure parts of the runtime: the session fold, budgets, plans and the journal."""

from datetime import UTC
from datetime import datetime
from functools import reduce

import msgspec
import pytest
from _builders import stored

from parley.aggregates.budget import decide_consume
from parley.aggregates.budget import evolve as evolve_budget
from parley.aggregates.budget import exhausted
from parley.aggregates.budget import period_of
from parley.aggregates.journal import Journal
from parley.aggregates.session import evolve as evolve_session
from parley.contracts.envelope import Event
from parley.contracts.registry import Budget
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import Usage
from parley.runtime.strategies import parse_plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(type: str, data: dict, version: int, stream: str = "session-s1") -> Event:
    return stored(
        type,
        data,
        source="/parley/runtime",
        time=NOW,
        stream=stream,
        version=version,
        position=version,
    )


def fold(events: list[Event]):
    return reduce(evolve_session, events, None)


def created() -> Event:
    settings = msgspec.to_builtins(SessionSettings(provider="offline"))
    return event("session.created", {"session_id": "s1", "agent_id": None, "settings": settings}, 1)


def test_a_running_turn_is_active_until_it_finishes_and_history_alternates():
    started = {"turn_id": "t1", "session_id": "s1", "agent_id": None, "message": "hi"}
    session = fold([created(), event("turn.started", started, 2)])
    assert session.active is not None and session.active.turn_id == "t1"
    assert [m.role for m in session.history] == ["user"]
    done = {"run_id": "t1", "outcome": "completed", "output": "echo: hi"}
    session = evolve_session(session, event("turn.completed", done, 3))
    assert session.active is None
    assert [(m.role, m.content) for m in session.history] == [
        ("user", "hi"),
        ("assistant", "echo: hi"),
    ]


def test_a_failed_turn_still_leaves_an_assistant_message_so_roles_alternate():
    started = {"turn_id": "t1", "session_id": "s1", "agent_id": None, "message": "hi"}
    failed = {"run_id": "t1", "outcome": "failed"}
    session = fold([created(), event("turn.started", started, 2), event("turn.failed", failed, 3)])
    assert [m.role for m in session.history] == ["user", "assistant"]
    assert "failed" in session.history[-1].content


def test_context_reaches_the_model_as_data_not_as_instructions():
    started = {
        "turn_id": "t1",
        "session_id": "s1",
        "agent_id": None,
        "message": "hi",
        "context": {"user": "ada"},
    }
    session = fold([created(), event("turn.started", started, 2)])
    assert session.history[0].content == 'hi\n\n[context, as data: {"user":"ada"}]'


def test_files_come_and_go_and_are_found_by_id_or_name():
    upload = {
        "session_id": "s1",
        "file_id": "f1",
        "name": "notes.txt",
        "content_type": "text/plain",
        "size": 3,
        "sha256": "x",
    }
    session = fold([created(), event("file.uploaded", upload, 2)])
    assert session.file("f1") is session.file("notes.txt")
    session = evolve_session(
        session, event("file.deleted", {"session_id": "s1", "file_id": "f1"}, 3)
    )
    assert session.file("notes.txt") is None


def test_a_session_stream_must_start_with_its_creation():
    with pytest.raises(ValueError):
        evolve_session(None, event("turn.started", {}, 1))


def fold_budget(events):
    state = None
    for i, new in enumerate(events, start=1):
        state = evolve_budget(state, Event.record(new, stream="budget-a1", version=i))
    return state


def test_budget_warns_at_80_percent_then_goes_critical_at_100_and_refuses():
    budget = Budget(max_tokens=100)
    first = decide_consume(None, "a1", budget, Usage(input_tokens=50, output_tokens=30), NOW)
    assert [e.type for e in first] == ["budget.consumed", "budget.warning"]
    state = fold_budget(first)
    assert exhausted(state, budget, NOW) is None
    second = decide_consume(state, "a1", budget, Usage(input_tokens=15, output_tokens=10), NOW)
    assert [e.type for e in second] == ["budget.consumed", "budget.critical"]
    state = fold_budget(first + second)
    assert state.tokens == 105
    assert "token budget of 100 spent" in exhausted(state, budget, NOW)
    third = decide_consume(state, "a1", budget, Usage(input_tokens=1), NOW)
    assert [e.type for e in third] == ["budget.consumed"]  # each threshold is announced once


def test_cost_budgets_and_periods():
    budget = Budget(max_cost_usd=0.01, period="day")
    assert period_of(budget, NOW) == "2026-11-23"
    events = decide_consume(None, "a1", budget, Usage(cost_usd=0.02), NOW)
    assert [e.type for e in events] == ["budget.consumed", "budget.warning", "budget.critical"]
    state = fold_budget(events)
    assert exhausted(state, budget, NOW) is not None
    tomorrow = datetime(2026, 11, 24, tzinfo=UTC)
    assert exhausted(state, budget, tomorrow) is None  # a new day, a new budget


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("1. look it up\n2. add it up", ["look it up", "add it up"]),
        ("echo: 1. call calculator({})\n2) done", ["call calculator({})", "done"]),
        ("no plan here", []),
    ],
)
def test_plans_are_read_from_numbered_lines(text, steps):
    assert parse_plan(text, 10) == steps


def test_plans_are_cut_at_max_iterations():
    assert parse_plan("1. a\n2. b\n3. c", 2) == ["a", "b"]


def test_the_journal_keeps_one_runs_steps_only():
    events = [
        event("turn.step_recorded", {"run_id": "t1", "step": 1, "kind": "model", "text": "x"}, 1),
        event(
            "tool.called",
            {"run_id": "t1", "step": 2, "call_id": "c", "name": "calculator", "arguments": {}},
            2,
        ),
        event(
            "tool.completed",
            {
                "run_id": "t1",
                "step": 2,
                "call_id": "c",
                "name": "calculator",
                "content": "4",
                "duration_ms": 1.0,
            },
            3,
        ),
        event("turn.step_recorded", {"run_id": "t2", "step": 1, "kind": "model"}, 4),
    ]
    journal = Journal.of(events, "t1")
    assert journal.models[1].text == "x"
    assert journal.results[(2, "c")].content == "4"
    assert (2, "c") in journal.called
    assert Journal.of(events, "t3").empty
