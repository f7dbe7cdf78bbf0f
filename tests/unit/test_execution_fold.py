"""The execution fold, the run's input text, and the scheduler's fire times."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import reduce

import pytest
from _builders import stored

from parley.aggregates.execution import Execution
from parley.aggregates.execution import evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import Trigger
from parley.runtime.domain import input_text
from parley.runtime.workers.scheduler import due_slot
from parley.runtime.workers.scheduler import latest_slot
from parley.runtime.workers.scheduler import slot_execution_id

NOW = datetime(2026, 11, 23, 12, 0, 7, 250_000, tzinfo=UTC)


def event(type: str, data: dict, version: int) -> Event:
    return stored(
        type,
        {"execution_id": "x1", "agent_id": "a1", **data},
        source="/parley/runtime",
        time=NOW,
        stream="execution-x1",
        version=version,
        position=100 + version,
    )


REQUESTED = event(
    "execution.requested",
    {"trigger": "webhook", "input_data": {"message": "hi"}, "options": {"max_attempts": 2}},
    1,
)


def started(version: int, attempt: int, worker: str = "w1") -> Event:
    return event("execution.started", {"attempt": attempt, "worker": worker}, version)


PARKED = {"step": 2, "call_id": "call_0", "tool": "calculator", "arguments": {"expression": "1"}}


def fold(*events: Event) -> Execution:
    state = reduce(evolve, events, None)
    assert state is not None
    return state


def test_a_requested_execution_is_queued_with_its_options_and_request_position():
    execution = fold(REQUESTED)
    assert (execution.status, execution.attempts, execution.version) == ("queued", 0, 1)
    assert execution.options.max_attempts == 2
    assert execution.requested_position == 101
    assert execution.runnable and not execution.finished


def test_each_start_counts_an_attempt_and_names_its_worker():
    execution = fold(REQUESTED, started(2, 1), started(3, 2, "w2"))
    assert (execution.status, execution.attempts, execution.worker) == ("running", 2, "w2")
    assert execution.runnable  # its worker may have died: the queue decides


def test_input_required_parks_it_and_an_answer_requeues_it_with_fresh_attempts():
    parked = fold(REQUESTED, started(2, 1), event("execution.input_required", PARKED, 3))
    assert parked.status == "input_required" and not parked.runnable
    assert parked.pending is not None and parked.pending.call_id == "call_0"
    answer = {"call_id": "call_0", "approved": True}
    answered = evolve(parked, event("execution.input_received", answer, 4))
    assert (answered.status, answered.pending, answered.leg_attempts) == ("queued", None, 0)
    assert answered.attempts == 1


@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
def test_a_final_outcome_is_final_and_later_events_only_move_the_version(outcome):
    done = fold(REQUESTED, started(2, 1), event(f"execution.{outcome}", {"run_id": "x1"}, 3))
    assert done.status == outcome and done.finished and not done.runnable
    later = evolve(done, started(4, 2))
    assert (later.status, later.attempts, later.version) == (outcome, 1, 4)


def test_run_steps_move_only_the_version():
    step = event("tool.called", {"run_id": "x1", "step": 2, "call_id": "c", "name": "t"}, 3)
    execution = fold(REQUESTED, started(2, 1), step)
    assert (execution.status, execution.version, execution.position) == ("running", 3, 103)


def test_a_stream_that_does_not_start_with_a_request_is_refused():
    with pytest.raises(ValueError, match="execution.requested"):
        fold(started(1, 1))


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"message": "do it"}, "do it"),
        ({"input": "run"}, "run"),
        ({"message": 3, "b": [1]}, '{"b": [1], "message": 3}'),
        ({}, "{}"),
    ],
)
def test_the_run_input_is_the_message_or_the_data_as_json(data, text):
    assert input_text(data) == text


def test_an_interval_fires_at_multiples_of_its_period_since_the_epoch():
    trigger = Trigger(type="periodic", interval_seconds=5)
    assert latest_slot(trigger, NOW) == NOW.replace(second=5, microsecond=0)
    on_the_dot = NOW.replace(second=10, microsecond=0)
    assert latest_slot(trigger, on_the_dot) == on_the_dot


def test_a_cron_expression_fires_at_its_latest_match_in_utc():
    trigger = Trigger(type="periodic", cron="*/15 * * * *")
    assert latest_slot(trigger, NOW) == NOW.replace(minute=0, second=0, microsecond=0)
    exact = datetime(2026, 11, 23, 12, 15, tzinfo=UTC)
    assert latest_slot(trigger, exact) == exact


def test_a_bad_cron_expression_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="bad cron"):
        latest_slot(Trigger(type="periodic", cron="61 * * * *"), NOW)


def test_triggers_that_are_not_periodic_have_no_slots():
    assert latest_slot(Trigger(type="webhook"), NOW) is None
    assert latest_slot(Trigger(type="periodic"), NOW) is None


def test_a_slot_before_the_agent_started_is_not_fired_only_the_latest_after():
    trigger = Trigger(type="periodic", interval_seconds=1)
    slot = NOW.replace(microsecond=0)
    assert due_slot(trigger, NOW, since=NOW - timedelta(seconds=0.1)) is None
    assert due_slot(trigger, NOW, since=NOW - timedelta(seconds=0.5)) == slot
    assert due_slot(trigger, NOW + timedelta(hours=3), since=NOW) == slot + timedelta(hours=3)


def test_slot_execution_ids_are_stable_per_agent_and_slot():
    slot = NOW.replace(microsecond=0)
    assert slot_execution_id("a1", slot) == slot_execution_id("a1", slot)
    assert slot_execution_id("a1", slot) != slot_execution_id("a2", slot)
    assert slot_execution_id("a1", slot) != slot_execution_id("a1", slot + timedelta(seconds=1))
