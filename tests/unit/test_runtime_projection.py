"""The edge's runtime projection, as a pure fold: events in, views out."""

import itertools
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from _builders import stored

from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import BudgetConsumed
from parley.contracts.runtime import BudgetThreshold
from parley.contracts.runtime import ExecutionInputReceived
from parley.contracts.runtime import ExecutionInputRequired
from parley.contracts.runtime import ExecutionOptions
from parley.contracts.runtime import ExecutionRequested
from parley.contracts.runtime import ExecutionStarted
from parley.contracts.runtime import FileDeleted
from parley.contracts.runtime import FileUploaded
from parley.contracts.runtime import InstanceChanged
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import SessionCreated
from parley.contracts.runtime import SessionDeleted
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import SessionSettingsChanged
from parley.contracts.runtime import StepRecorded
from parley.contracts.runtime import ToolCalled
from parley.contracts.runtime import ToolCompleted
from parley.contracts.runtime import ToolFailed
from parley.contracts.runtime import TurnStarted
from parley.contracts.runtime import Usage
from parley.edge.projections.runtime import RuntimeProjection

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


class _NoStore:
    """The fold never touches the store."""


class Feed:
    """Builds recorded events with dense versions and global positions."""

    def __init__(self) -> None:
        self.projection = RuntimeProjection(_NoStore())  # type: ignore[arg-type]
        self.positions = itertools.count(1)
        self.versions: dict[str, int] = {}
        self.clock = T0

    def __call__(
        self,
        stream: str,
        type: str,
        payload: msgspec.Struct | dict[str, Any],
        *,
        namespace: str = "default",
        after: timedelta = timedelta(seconds=1),
    ) -> Event:
        self.clock += after
        version = self.versions[stream] = self.versions.get(stream, 0) + 1
        event = stored(
            type,
            payload,
            id=f"e{version}-{stream}",
            source="/parley/runtime",
            time=self.clock,
            stream=stream,
            version=version,
            position=next(self.positions),
            namespace=namespace,
        )
        self.projection.apply(event)
        return event


def _start_turn(
    feed: Feed, session: str, turn: str, message: str = "hi", agent: str | None = "a1"
) -> Event:
    """Feed ``turn.started`` of ``turn`` on ``session``."""
    return feed(
        f"session-{session}",
        "turn.started",
        TurnStarted(turn_id=turn, session_id=session, agent_id=agent, message=message),
    )


def _chat_turn(feed: Feed, session: str, turn: str, agent: str | None = "a1") -> None:
    stream = f"session-{session}"
    _start_turn(feed, session, turn, "what time is it?", agent)
    feed(
        stream,
        "turn.step_recorded",
        StepRecorded(
            run_id=turn,
            step=1,
            kind="model",
            text="let me look",
            tool_calls=[{"id": "c1", "name": "current_time", "arguments": {}}],
        ),
    )
    feed(
        stream,
        "tool.called",
        ToolCalled(run_id=turn, step=1, call_id="c1", name="current_time", arguments={}),
    )
    feed(
        stream,
        "tool.completed",
        ToolCompleted(
            run_id=turn, step=1, call_id="c1", name="current_time", content="12:00", duration_ms=1.5
        ),
    )
    feed(
        stream,
        "turn.step_recorded",
        StepRecorded(run_id=turn, step=2, kind="model", text="It is noon."),
    )
    feed(
        stream,
        "turn.completed",
        RunFinished(
            run_id=turn,
            outcome="completed",
            output="It is noon.",
            usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.001),
            response_time_ms=200.0,
            agent_id=agent,
            session_id=session,
        ),
    )


def _open(feed: Feed, session: str, agent: str | None = "a1", **kw: Any) -> None:
    feed(
        f"session-{session}",
        "session.created",
        SessionCreated(
            session_id=session, agent_id=agent, settings=SessionSettings(model="m1"), title="t"
        ),
        **kw,
    )


@pytest.fixture
def feed() -> Feed:
    return Feed()


def test_a_created_session_is_listed_with_its_settings(feed: Feed) -> None:
    _open(feed, "s1")
    view = feed.projection.session("default", "s1")
    assert view is not None
    assert (view.agent_id, view.title, view.settings["model"]) == ("a1", "t", "m1")
    assert view.version == 1 and view.turn_count == 0 and view.history == []
    assert [v.id for v in feed.projection.sessions("default")] == ["s1"]
    assert feed.projection.sessions("default", "other") == []


def test_a_session_is_invisible_from_another_namespace(feed: Feed) -> None:
    _open(feed, "s1", namespace="team-a")
    assert feed.projection.session("default", "s1") is None
    assert feed.projection.session("team-a", "s1") is not None


def test_a_turn_folds_into_history_in_order(feed: Feed) -> None:
    _open(feed, "s1")
    _chat_turn(feed, "s1", "t1")
    view = feed.projection.session("default", "s1")
    assert view is not None
    roles = [(h.role, h.content) for h in view.history]
    assert roles == [
        ("user", "what time is it?"),
        ("assistant", "let me look"),
        ("tool", "12:00"),
        ("assistant", "It is noon."),
    ]
    assert view.history[1].tool_calls == [{"id": "c1", "name": "current_time", "arguments": {}}]
    assert view.history[-1].outcome == "completed"
    assert view.turn_count == 1 and view.active_turn is None and view.last_turn_at is not None
    ref = feed.projection.turn("t1")
    assert ref is not None and (ref.session_id, ref.outcome) == ("s1", "completed")


def test_a_running_turn_is_the_sessions_active_turn(feed: Feed) -> None:
    _open(feed, "s1")
    _start_turn(feed, "s1", "t1")
    view = feed.projection.session("default", "s1")
    assert view is not None and view.active_turn is not None
    assert view.active_turn.turn_id == "t1"
    ref = feed.projection.turn("t1")
    assert ref is not None and ref.outcome is None


def test_a_failed_tool_is_a_tool_entry_with_its_error(feed: Feed) -> None:
    _open(feed, "s1")
    _start_turn(feed, "s1", "t1")
    feed(
        "session-s1",
        "tool.failed",
        ToolFailed(
            run_id="t1",
            step=1,
            call_id="c1",
            name="http_request",
            code="denied",
            message="host not allowed",
            duration_ms=2,
        ),
    )
    view = feed.projection.session("default", "s1")
    assert view is not None
    entry = view.history[-1]
    assert (entry.role, entry.name, entry.error) == (
        "tool",
        "http_request",
        {"code": "denied", "message": "host not allowed"},
    )


def test_settings_changes_and_files_are_tracked(feed: Feed) -> None:
    _open(feed, "s1")
    feed(
        "session-s1",
        "session.settings_changed",
        SessionSettingsChanged(
            session_id="s1", settings=SessionSettings(model="m2"), changed=["model"]
        ),
    )
    for file_id, name, size, sha256 in (("f1", "a.txt", 3, "ab"), ("f2", "b.txt", 4, "cd")):
        feed(
            "session-s1",
            "file.uploaded",
            FileUploaded(
                session_id="s1",
                file_id=file_id,
                name=name,
                content_type="text/plain",
                size=size,
                sha256=sha256,
            ),
        )
    feed("session-s1", "file.deleted", FileDeleted(session_id="s1", file_id="f1"))
    view = feed.projection.session("default", "s1")
    assert view is not None
    assert view.settings["model"] == "m2"
    assert [(f.id, f.name, f.size) for f in view.files] == [("f2", "b.txt", 4)]
    assert view.version == 5


def test_a_deleted_session_leaves_every_view(feed: Feed) -> None:
    _open(feed, "s1")
    _chat_turn(feed, "s1", "t1")
    assert any(e.session_id == "s1" for e in feed.projection.logs("a1"))
    feed("session-s1", "session.deleted", SessionDeleted(session_id="s1"))
    assert feed.projection.session("default", "s1") is None
    assert feed.projection.sessions("default") == []
    assert feed.projection.turn("t1") is None
    assert not any(e.session_id == "s1" for e in feed.projection.logs("a1"))
    assert feed.projection.metrics("a1", now=feed.clock).sessions == 0
    feed(
        "session-s1",
        "file.uploaded",
        FileUploaded(
            session_id="s1", file_id="f", name="x", content_type="text/plain", size=1, sha256=""
        ),
    )
    assert feed.projection.session("default", "s1") is None


def _request(feed: Feed, execution: str, agent: str = "a1") -> None:
    feed(
        f"execution-{execution}",
        "execution.requested",
        ExecutionRequested(
            execution_id=execution,
            agent_id=agent,
            trigger="webhook",
            input_data={"x": 1},
            options=ExecutionOptions(),
        ),
    )


def test_an_execution_goes_through_its_statuses(feed: Feed) -> None:
    stream = "execution-x1"
    _request(feed, "x1")
    assert feed.projection.execution("default", "a1", "x1").status == "queued"
    feed(
        stream,
        "execution.started",
        ExecutionStarted(execution_id="x1", agent_id="a1", attempt=1, worker="w1"),
    )
    assert feed.projection.execution("default", "a1", "x1").status == "running"
    feed(
        stream,
        "execution.step_recorded",
        StepRecorded(run_id="x1", step=1, kind="model", text="", tool_calls=[{"id": "c1"}]),
    )
    feed(
        stream,
        "execution.input_required",
        ExecutionInputRequired(
            execution_id="x1",
            agent_id="a1",
            step=1,
            call_id="c1",
            tool="http_request",
            arguments={"url": "https://example.com"},
        ),
    )
    view = feed.projection.execution("default", "a1", "x1")
    assert view.status == "input_required"
    assert view.pending_input is not None and view.pending_input.tool == "http_request"
    feed(
        stream,
        "execution.input_received",
        ExecutionInputReceived(execution_id="x1", agent_id="a1", call_id="c1", approved=True),
    )
    assert feed.projection.execution("default", "a1", "x1").status == "queued"
    feed(
        stream,
        "execution.started",
        ExecutionStarted(execution_id="x1", agent_id="a1", attempt=2, worker="w1"),
    )
    feed(
        stream,
        "tool.called",
        ToolCalled(run_id="x1", step=1, call_id="c1", name="http_request", arguments={}),
    )
    feed(
        stream,
        "tool.completed",
        ToolCompleted(
            run_id="x1", step=1, call_id="c1", name="http_request", content="ok", duration_ms=3
        ),
    )
    feed(
        stream,
        "execution.completed",
        RunFinished(
            run_id="x1",
            outcome="completed",
            output="done",
            usage=Usage(input_tokens=4),
            response_time_ms=50,
            agent_id="a1",
        ),
    )
    view = feed.projection.execution("default", "a1", "x1")
    assert (view.status, view.output, view.attempts, view.pending_input) == (
        "completed",
        "done",
        2,
        None,
    )
    assert [s.type for s in view.steps] == ["model", "tool_called", "tool_completed"]
    assert view.input_data == {"x": 1} and view.trigger == "webhook"
    assert view.finished_at is not None and view.started_at is not None


def test_a_finished_execution_ignores_late_events(feed: Feed) -> None:
    _request(feed, "x1")
    feed("execution-x1", "execution.cancelled", RunFinished(run_id="x1", outcome="cancelled"))
    feed(
        "execution-x1",
        "execution.started",
        ExecutionStarted(execution_id="x1", agent_id="a1", attempt=1, worker="late"),
    )
    view = feed.projection.execution("default", "a1", "x1")
    assert (view.status, view.attempts) == ("cancelled", 0)


def test_a_resumed_execution_counts_its_attempts_and_logs_a_warning(feed: Feed) -> None:
    _request(feed, "x1")
    for attempt in (1, 2):
        feed(
            "execution-x1",
            "execution.started",
            ExecutionStarted(
                execution_id="x1", agent_id="a1", attempt=attempt, worker=f"w{attempt}"
            ),
        )
    assert feed.projection.execution("default", "a1", "x1").attempts == 2
    warnings = feed.projection.logs("a1", level="warning")
    assert [w.event_type for w in warnings] == ["execution.started"]


def test_latest_output_is_the_newest_completed_execution(feed: Feed) -> None:
    for eid, outcome in (("x1", "completed"), ("x2", "completed"), ("x3", "failed")):
        _request(feed, eid)
        feed(
            f"execution-{eid}",
            f"execution.{outcome}",
            RunFinished(run_id=eid, outcome=outcome, output=eid, agent_id="a1"),
        )  # type: ignore[arg-type]
    latest = feed.projection.latest_output("default", "a1")
    assert latest is not None and latest.id == "x2"
    assert feed.projection.latest_output("default", "nobody") is None


def test_executions_filter_by_predicate_and_agent(feed: Feed) -> None:
    _request(feed, "x1")
    _request(feed, "x2", agent="a2")
    feed(
        "execution-x1",
        "execution.cancelled",
        RunFinished(run_id="x1", outcome="cancelled", agent_id="a1"),
    )
    assert [v.id for v in feed.projection.executions("default", "a1")] == ["x1"]
    cancelled = feed.projection.executions("default", "a1", lambda v: v.status == "cancelled")
    assert [v.id for v in cancelled] == ["x1"]
    assert feed.projection.execution("default", "a1", "x2") is None


def test_metrics_add_up_turns_and_executions(feed: Feed) -> None:
    _open(feed, "s1")
    _chat_turn(feed, "s1", "t1")
    _request(feed, "x1")
    feed(
        "execution-x1",
        "execution.failed",
        RunFinished(
            run_id="x1",
            outcome="failed",
            usage=Usage(input_tokens=2, output_tokens=1),
            response_time_ms=100,
            agent_id="a1",
            error=ErrorBody(code=ErrorCode.PROVIDER_ERROR, message="down"),
        ),
    )
    metrics = feed.projection.metrics("a1", now=feed.clock)
    assert (metrics.total_requests, metrics.turns, metrics.executions) == (2, 1, 1)
    assert (metrics.succeeded, metrics.failed, metrics.success_rate) == (1, 1, 0.5)
    assert metrics.average_response_time_ms == 150.0
    assert (metrics.tokens.input, metrics.tokens.output, metrics.tokens.total) == (12, 6, 18)
    assert metrics.cost_usd == pytest.approx(0.001)
    assert metrics.active_conversations == 1 and metrics.sessions == 1
    later = feed.projection.metrics("a1", now=feed.clock + timedelta(minutes=16))
    assert later.active_conversations == 0


def test_an_agent_that_never_ran_has_empty_metrics(feed: Feed) -> None:
    metrics = feed.projection.metrics("nobody")
    assert metrics.total_requests == 0 and metrics.success_rate is None
    assert metrics.average_response_time_ms is None


def test_budget_and_instances_are_tracked_per_agent(feed: Feed) -> None:
    feed(
        "budget-a1",
        "budget.consumed",
        BudgetConsumed(
            agent_id="a1",
            period="2025-01",
            usage=Usage(input_tokens=5),
            total_tokens=500,
            total_cost_usd=0.5,
        ),
    )
    feed(
        "budget-a1",
        "budget.warning",
        BudgetThreshold(
            agent_id="a1", period="2025-01", kind="tokens", used=800, limit=1000, ratio=0.8
        ),
    )
    feed(
        "instance-a1",
        "instance.started",
        InstanceChanged(agent_id="a1", worker="w1", reason="cold start", cold_start_ms=12.5),
    )
    feed(
        "instance-a1",
        "instance.started",
        InstanceChanged(agent_id="a1", worker="w2", reason="cold start", cold_start_ms=3),
    )
    feed(
        "instance-a1",
        "instance.stopped",
        InstanceChanged(agent_id="a1", worker="w1", reason="idle"),
    )
    metrics = feed.projection.metrics("a1")
    assert (metrics.budget.period, metrics.budget.total_tokens) == ("2025-01", 500)
    assert metrics.budget.last_threshold is not None
    assert metrics.budget.last_threshold["level"] == "warning"
    assert (metrics.instances.count, metrics.instances.workers) == (1, ["w2"])
    assert metrics.instances.cold_starts == 2
    assert [e.level for e in feed.projection.logs("a1", level="warning")] == ["warning"]


def test_logs_filter_by_level_time_and_limit(feed: Feed) -> None:
    _open(feed, "s1")
    _chat_turn(feed, "s1", "t1")
    _start_turn(feed, "s1", "t2", "again")
    feed(
        "session-s1",
        "turn.failed",
        RunFinished(
            run_id="t2",
            outcome="failed",
            agent_id="a1",
            session_id="s1",
            error=ErrorBody(code=ErrorCode.PROVIDER_ERROR, message="down"),
        ),
    )
    every = feed.projection.logs("a1")
    assert [e.time for e in every] == sorted(e.time for e in every)
    errors = feed.projection.logs("a1", level="error")
    assert len(errors) == 1 and "PROVIDER_ERROR" in errors[0].message
    assert errors[0].turn_id == "t2" and errors[0].session_id == "s1"
    assert len(feed.projection.logs("a1", limit=2)) == 2
    assert feed.projection.logs("a1", limit=2) == every[-2:]
    since = feed.projection.logs("a1", since=feed.clock)
    assert [e.event_type for e in since] == ["turn.failed"]


def test_ad_hoc_sessions_count_in_no_agents_metrics(feed: Feed) -> None:
    _open(feed, "s1", agent=None)
    _chat_turn(feed, "s1", "t1", agent=None)
    view = feed.projection.session("default", "s1")
    assert view is not None and view.turn_count == 1
    assert feed.projection.metrics("a1").total_requests == 0


def test_other_events_only_advance_the_position(feed: Feed) -> None:
    feed("agent-a1", "agent.created", {"agent_id": "a1"})
    feed("custom-x", "custom.thing", {})
    assert feed.projection.applied_position == 2
    assert feed.projection.sessions("default") == []


def test_an_unreadable_runtime_event_is_skipped_not_fatal(feed: Feed) -> None:
    feed("execution-x1", "execution.requested", {"execution_id": "x1"})  # no agent_id
    _open(feed, "s1")
    assert feed.projection.applied_position == 2
    assert feed.projection.session("default", "s1") is not None


def test_a_replayed_event_is_ignored(feed: Feed) -> None:
    _open(feed, "s1")
    event = _start_turn(feed, "s1", "t1")
    feed.projection.apply(event)
    view = feed.projection.session("default", "s1")
    assert view is not None and view.turn_count == 1 and len(view.history) == 1
