"""The session and execution deciders, and the worker's triage: given a state, when a
command, then these events (or this refusal). Pure: no store, no processes."""

from collections.abc import Callable
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from itertools import chain
from typing import TypeVar

import msgspec
import pytest
from _builders import fold_decided

from parley.aggregates import execution
from parley.aggregates import session
from parley.aggregates.decision import Context
from parley.aggregates.execution import Begin
from parley.aggregates.execution import Fail
from parley.aggregates.execution import Finish
from parley.aggregates.execution import Record
from parley.aggregates.execution import Request
from parley.aggregates.execution import Superseded
from parley.aggregates.session import EndOrphanTurn
from parley.aggregates.session import Moved
from parley.aggregates.session import Open
from parley.aggregates.session import RemoveFile
from parley.aggregates.session import StartTurn
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.runtime import CancelExecution
from parley.contracts.runtime import ExecutionInput
from parley.contracts.runtime import ExecutionOptions
from parley.contracts.runtime import ExecutionRequested
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import StepRecorded
from parley.contracts.runtime import TurnStarted
from parley.runtime.domain import triage

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CTX = Context(NOW, lambda: "id-1")
S = TypeVar("S")
Decided = list[tuple[str, msgspec.Struct]]


def folded(evolve: Callable[[S | None, Event], S], stream: str, decided: Iterable[Decided]) -> S:
    """Fold the batches of ``decided`` events from a new ``stream``, as the store records them."""
    state = fold_decided(
        evolve,
        None,
        chain.from_iterable(decided),
        version=0,
        positions=0,
        source="/parley/runtime",
        time=NOW,
        stream=stream,
    )
    assert state is not None
    return state


def fold_session(*decided: Decided) -> session.Session:
    return folded(session.evolve, "session-s1", decided)


OPEN = Open(session_id="s1", agent_id="a1", settings=SessionSettings())


def started(turn_id: str) -> TurnStarted:
    return TurnStarted(turn_id=turn_id, session_id="s1", agent_id="a1", message="hi")


def test_a_session_opens_once():
    assert [kind for kind, _ in session.decide(None, OPEN, CTX).events] == ["session.created"]
    opened = fold_session(session.decide(None, OPEN, CTX).events)
    with pytest.raises(Moved):
        session.decide(opened, OPEN, CTX)


def test_a_turn_starts_only_on_the_idle_session_it_saw():
    opened = fold_session(session.decide(None, OPEN, CTX).events)
    start = StartTurn(namespace="default", started=started("t1"), seen_version=1)
    decided = session.decide(opened, start, CTX).events
    assert [kind for kind, _ in decided] == ["turn.started"]
    busy = fold_session(session.decide(None, OPEN, CTX).events, decided)
    with pytest.raises(Moved):  # the session moved on since it was seen
        session.decide(busy, start, CTX)
    again = StartTurn(namespace="default", started=started("t2"), seen_version=2)
    with pytest.raises(Moved):  # seen as it is, but a turn runs
        session.decide(busy, again, CTX)


def test_a_first_turn_opens_its_session_only_if_nobody_did():
    settings = SessionSettings(concurrency="enqueue")
    first = msgspec.structs.replace(started("t1"), opens=settings)
    opening = StartTurn(namespace="default", started=first, seen_version=0)
    decided = session.decide(None, opening, CTX).events
    assert [kind for kind, _ in decided] == ["turn.started"]
    busy = fold_session(decided)
    assert (busy.id, busy.agent_id, busy.settings, busy.version) == ("s1", "a1", settings, 1)
    assert busy.active is not None and busy.active.turn_id == "t1"
    assert [m.content for m in busy.history] == ["hi"]
    with pytest.raises(Moved):  # opened meanwhile (another message, or an Open)
        session.decide(fold_session(session.decide(None, OPEN, CTX).events), opening, CTX)
    with pytest.raises(ValueError):  # a plain start cannot begin a stream
        fold_session([("turn.started", started("t1"))])


def test_an_orphaned_turn_is_failed_only_if_nothing_happened_since():
    opened = session.decide(None, OPEN, CTX).events
    start = [("turn.started", started("t1"))]
    busy = fold_session(opened, start)
    end = session.decide(busy, EndOrphanTurn(turn_id="t1", seen_version=2), CTX).events
    assert [kind for kind, _ in end] == ["turn.failed"]
    assert session.decide(busy, EndOrphanTurn(turn_id="t1", seen_version=1), CTX).events == []
    assert session.decide(busy, EndOrphanTurn(turn_id="t9", seen_version=2), CTX).events == []


def test_commands_on_a_missing_session_or_file_are_refused():
    with pytest.raises(ParleyError) as missing:
        session.decide(None, RemoveFile(namespace="default", file_id="f1"), CTX)
    assert missing.value.code is ErrorCode.SESSION_NOT_FOUND
    opened = fold_session(session.decide(None, OPEN, CTX).events)
    with pytest.raises(ParleyError) as no_file:
        session.decide(opened, RemoveFile(namespace="default", file_id="f1"), CTX)
    assert no_file.value.code is ErrorCode.FILE_NOT_FOUND
    with pytest.raises(ParleyError):  # another namespace sees nothing
        session.decide(opened, RemoveFile(namespace="other", file_id="f1"), CTX)


REQUEST = Request(
    namespace="default",
    requested=ExecutionRequested(
        execution_id="x1",
        agent_id="a1",
        trigger="webhook",
        input_data={},
        options=ExecutionOptions(max_attempts=2, retry_backoff_seconds=1),
    ),
)


def fold_execution(*decided: Decided) -> execution.Execution:
    return folded(execution.evolve, "execution-x1", decided)


def test_a_repeated_request_is_idempotent_and_a_taken_id_is_refused():
    queued = fold_execution(execution.decide(None, REQUEST, CTX).events)
    assert execution.decide(queued, REQUEST, CTX).events == []
    other = msgspec.structs.replace(
        REQUEST, requested=msgspec.structs.replace(REQUEST.requested, agent_id="a2")
    )
    with pytest.raises(ParleyError) as taken:
        execution.decide(queued, other, CTX)
    assert taken.value.code is ErrorCode.CONCURRENCY_CONFLICT


def test_a_start_counts_an_attempt_and_only_the_running_attempt_records():
    requested = execution.decide(None, REQUEST, CTX).events
    queued = fold_execution(requested)
    begun = execution.decide(queued, Begin(worker="w1", seen_version=1), CTX).events
    running = fold_execution(requested, begun)
    assert (running.status, running.attempts) == ("running", 1)
    step = StepRecorded(run_id="x1", step=1, kind="model", text="hi")
    record = Record(attempt=1, type="execution.step_recorded", payload=step)
    assert [kind for kind, _ in execution.decide(running, record, CTX).events] == [
        "execution.step_recorded"
    ]
    with pytest.raises(Superseded):
        execution.decide(running, Record(attempt=0, type="x", payload=step), CTX)
    with pytest.raises(execution.Moved):  # someone wrote since the worker looked
        execution.decide(running, Begin(worker="w2", seen_version=1), CTX)


def test_an_outcome_is_recorded_once_and_a_cancel_stops_the_worker():
    requested = execution.decide(None, REQUEST, CTX).events
    begun = execution.decide(fold_execution(requested), Begin(worker="w1", seen_version=1), CTX)
    running = fold_execution(requested, begun.events)
    cancel = CancelExecution(namespace="default", agent_id="a1", execution_id="x1")
    cancelled = execution.decide(running, cancel, CTX)
    assert [kind for kind, _ in cancelled.events] == ["execution.cancelled"]
    assert list(cancelled.effects) == [execution.StopWorker("x1")]
    done = fold_execution(requested, begun.events, cancelled.events)
    finish = Finish(attempt=1, finished=RunFinished(run_id="x1", outcome="completed"))
    assert execution.decide(done, finish, CTX).events == []  # the cancel won
    with pytest.raises(ParleyError) as again:
        execution.decide(done, cancel, CTX)
    assert again.value.code is ErrorCode.INVALID_STATE_TRANSITION
    fail = Fail(attempts_seen=1, code=ErrorCode.INTERNAL_ERROR, message="x")
    assert execution.decide(done, fail, CTX).events == []


def test_only_a_parked_execution_takes_an_answer():
    queued = fold_execution(execution.decide(None, REQUEST, CTX).events)
    answer = ExecutionInput(namespace="default", agent_id="a1", execution_id="x1", approved=True)
    with pytest.raises(ParleyError) as refused:
        execution.decide(queued, answer, CTX)
    assert refused.value.code is ErrorCode.INPUT_NOT_EXPECTED
    stranger = ExecutionInput(namespace="default", agent_id="a9", execution_id="x1", approved=True)
    with pytest.raises(ParleyError) as hidden:
        execution.decide(queued, stranger, CTX)
    assert hidden.value.code is ErrorCode.EXECUTION_NOT_FOUND


def test_retries_back_off_until_the_attempts_of_the_leg_are_spent():
    requested = execution.decide(None, REQUEST, CTX).events
    first = execution.decide(fold_execution(requested), Begin(worker="w", seen_version=1), CTX)
    once = fold_execution(requested, first.events)
    assert execution.retry_delay(once, retryable=True) == 1.0
    assert execution.retry_delay(once, retryable=False) is None
    second = execution.decide(once, Begin(worker="w", seen_version=2), CTX)
    twice = fold_execution(requested, first.events, second.events)
    assert execution.retry_delay(twice, retryable=True) is None  # max_attempts=2


def test_the_worker_triage_of_a_taken_item():
    queued = fold_execution(execution.decide(None, REQUEST, CTX).events)
    assert triage(None, owned=False, ack_wait=30).action == "ack"
    assert triage(queued, owned=False, ack_wait=30).action == "run"
    requested = execution.decide(None, REQUEST, CTX).events
    begun = execution.decide(queued, Begin(worker="w", seen_version=1), CTX).events
    running = fold_execution(requested, begun)
    later = triage(running, owned=True, ack_wait=30)
    assert (later.action, later.delay) == ("later", 30)
    assert triage(running, owned=False, ack_wait=30).action == "run"  # its worker died
