"""The runtime projection: sessions, executions, logs, metrics, budgets and instances.

It folds the runtime's streams (``session-``, ``execution-``, ``budget-``, ``instance-``) with
the shared machinery of :class:`~parley.edge.projections._base.FoldingProjection` (from position 0,
``applied_position``, read-your-writes waiters). The fold is pure: :meth:`apply` an
:class:`Event`, read the views. A deleted session leaves every view, its log lines included.
"""

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from parley.contracts.envelope import Event, utcnow
from parley.contracts.runtime import EVENT_TYPES
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import iso
from parley.edge.projections.runtime_views import (
    ActiveTurnView,
    AgentMetrics,
    BudgetView,
    ExecutionStatus,
    ExecutionStep,
    ExecutionView,
    FileView,
    HistoryEntry,
    InstancesView,
    LogEntry,
    LogLevel,
    PendingInput,
    SessionDetail,
    SessionView,
    TokenTotals,
)
from parley.eventstore import EventStore

__all__ = ["ACTIVE_WINDOW", "LOG_LIMIT", "LOG_LEVELS", "RuntimeProjection", "TurnRef"]

ACTIVE_WINDOW = timedelta(minutes=15)
"""A conversation with a turn this recent counts as active."""
LOG_LIMIT = 5_000
"""Log lines kept per agent (the oldest go first)."""
LOG_LEVELS: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
"""Log levels, lowest first."""

log = logging.getLogger(__name__)

_CATEGORIES = ("session-", "execution-", "budget-", "instance-")


@dataclass(frozen=True, slots=True)
class TurnRef:
    """Where a turn lives: its session and agent, and how it ended (None while running)."""

    turn_id: str
    session_id: str
    agent_id: str | None
    outcome: str | None = None


@dataclass(slots=True)
class _Session:
    id: str
    namespace: str
    agent_id: str | None
    title: str | None
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    files: dict[str, FileView] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    turn_count: int = 0
    active: ActiveTurnView | None = None
    last_turn_at: datetime | None = None


@dataclass(slots=True)
class _Execution:
    id: str
    agent_id: str
    namespace: str
    trigger: str
    input_data: dict[str, Any]
    options: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: ExecutionStatus = "queued"
    attempts: int = 0
    steps: list[ExecutionStep] = field(default_factory=list)
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    response_time_ms: float | None = None
    pending: PendingInput | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(slots=True)
class _Stats:
    turns: int = 0
    executions: int = 0
    succeeded: int = 0
    failed: int = 0
    response_ms_sum: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    budget: BudgetView = field(default_factory=BudgetView)
    workers: dict[str, None] = field(default_factory=dict)
    cold_starts: int = 0
    last_cold_start_ms: float | None = None
    log: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))


class RuntimeProjection(FoldingProjection):
    """What the runtime did, by session, execution and agent."""

    prefix = ""  # several categories: the fold picks its own by stream name
    name = "runtime-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._sessions: dict[str, _Session] = {}
        self._turns: dict[str, TurnRef] = {}
        self._executions: dict[str, _Execution] = {}
        self._by_agent: dict[str, dict[str, _Execution]] = {}
        self._stats: dict[str, _Stats] = {}

    # --- reads ---------------------------------------------------------------------------

    def session(self, namespace: str, session_id: str) -> SessionDetail | None:
        """A live session of ``namespace`` with its history, if any."""
        state = self._sessions.get(session_id)
        if state is None or state.namespace != namespace:
            return None
        return SessionDetail(**_session_fields(state), history=list(state.history))

    def sessions(self, namespace: str, agent_id: str | None = None) -> list[SessionView]:
        """The live sessions of ``namespace`` (of ``agent_id`` when given), unordered."""
        return [
            SessionView(**_session_fields(s))
            for s in self._sessions.values()
            if s.namespace == namespace and (agent_id is None or s.agent_id == agent_id)
        ]

    def session_ids(self, namespace: str, agent_id: str | None = None) -> list[str]:
        """Ids of the live sessions of ``namespace`` (of ``agent_id`` when given)."""
        return [
            s.id
            for s in self._sessions.values()
            if s.namespace == namespace and (agent_id is None or s.agent_id == agent_id)
        ]

    def turn(self, turn_id: str) -> TurnRef | None:
        """The turn ``turn_id`` of a live session, if known."""
        return self._turns.get(turn_id)

    def execution(self, namespace: str, agent_id: str, execution_id: str) -> ExecutionView | None:
        """One execution of ``agent_id``, if any."""
        state = self._by_agent.get(agent_id, {}).get(execution_id)
        if state is None or state.namespace != namespace:
            return None
        return _execution_view(state)

    def executions(
        self,
        namespace: str,
        agent_id: str,
        predicate: Callable[[ExecutionView], bool] | None = None,
    ) -> list[ExecutionView]:
        """The executions of ``agent_id`` for which ``predicate`` holds, oldest first."""
        views = (
            _execution_view(e)
            for e in self._by_agent.get(agent_id, {}).values()
            if e.namespace == namespace
        )
        return [v for v in views if predicate is None or predicate(v)]

    def latest_output(self, namespace: str, agent_id: str) -> ExecutionView | None:
        """The most recently finished completed execution of ``agent_id``."""
        done = [
            e
            for e in self._by_agent.get(agent_id, {}).values()
            if e.namespace == namespace and e.status == "completed"
        ]
        if not done:
            return None
        return _execution_view(max(done, key=lambda e: (e.finished_at or e.updated_at, e.id)))

    def logs(
        self,
        agent_id: str,
        *,
        level: LogLevel = "info",
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """The newest ``limit`` log lines of ``agent_id`` at ``level`` or above, oldest first."""
        stats = self._stats.get(agent_id)
        if stats is None:
            return []
        floor = LOG_LEVELS[level]
        after = iso(since) if since is not None else None
        picked: list[LogEntry] = []
        for entry in reversed(stats.log):
            if len(picked) >= limit or (after is not None and entry.time < after):
                break
            if LOG_LEVELS[entry.level] < floor:
                continue
            if entry.session_id is not None and entry.session_id not in self._sessions:
                continue  # the session was deleted: it leaves the log too
            picked.append(entry)
        picked.reverse()
        return picked

    def metrics(self, agent_id: str, now: datetime | None = None) -> AgentMetrics:
        """What ``agent_id``'s runs added up to (zeros for an agent that never ran)."""
        stats = self._stats.get(agent_id) or _Stats()
        horizon = (now or utcnow()) - ACTIVE_WINDOW
        own = [s for s in self._sessions.values() if s.agent_id == agent_id]
        active = sum(1 for s in own if s.last_turn_at is not None and s.last_turn_at >= horizon)
        total = stats.turns + stats.executions
        return AgentMetrics(
            agent_id=agent_id,
            total_requests=total,
            turns=stats.turns,
            executions=stats.executions,
            succeeded=stats.succeeded,
            failed=stats.failed,
            success_rate=round(stats.succeeded / total, 4) if total else None,
            average_response_time_ms=round(stats.response_ms_sum / total, 3) if total else None,
            active_conversations=active,
            sessions=len(own),
            tokens=TokenTotals(
                input=stats.input_tokens,
                output=stats.output_tokens,
                total=stats.input_tokens + stats.output_tokens,
            ),
            cost_usd=round(stats.cost_usd, 8),
            budget=stats.budget,
            instances=InstancesView(
                count=len(stats.workers),
                workers=list(stats.workers),
                cold_starts=stats.cold_starts,
                last_cold_start_ms=stats.last_cold_start_ms,
            ),
        )

    # --- the fold ------------------------------------------------------------------------

    def _fold(self, event: Event) -> None:
        if event.type not in EVENT_TYPES or not event.stream.startswith(_CATEGORIES):
            return
        try:
            self._fold_runtime(event)
        except (KeyError, TypeError, ValueError, AttributeError):
            # A malformed payload must not stop the feed (it would be re-read forever).
            log.exception("skipped unreadable runtime event %s (%s)", event.id, event.type)

    def _fold_runtime(self, event: Event) -> None:
        category = event.stream.partition("-")[0]
        if category == "session":
            self._fold_session(event)
        elif category == "execution":
            self._fold_execution(event)
        elif category == "budget":
            self._fold_budget(event)
        else:
            self._fold_instance(event)

    def _fold_session(self, event: Event) -> None:
        data, kind, at = event.data, event.type, event.time
        if kind == "session.created":
            self._sessions[event.subject] = _Session(
                id=event.subject,
                namespace=event.namespace,
                agent_id=data.get("agent_id"),
                title=data.get("title"),
                settings=dict(data.get("settings") or {}),
                created_at=at,
                updated_at=at,
                version=event.version,
            )
            return
        session = self._sessions.get(event.subject)
        if session is None:
            return  # deleted, or a stream that never opened
        session.updated_at, session.version = at, event.version
        agent_id = session.agent_id
        run_id = str(data.get("run_id") or data.get("turn_id") or "")
        if kind == "session.settings_changed":
            session.settings = dict(data.get("settings") or {})
        elif kind == "session.deleted":
            del self._sessions[session.id]
            for turn_id in [t for t, ref in self._turns.items() if ref.session_id == session.id]:
                del self._turns[turn_id]
        elif kind == "file.uploaded":
            file_id = str(data["file_id"])
            session.files[file_id] = FileView(
                id=file_id,
                name=str(data.get("name", "")),
                content_type=str(data.get("content_type", "")),
                size=int(data.get("size", 0)),
                sha256=str(data.get("sha256", "")),
                uploaded_at=iso(at),
            )
        elif kind == "file.deleted":
            session.files.pop(str(data.get("file_id")), None)
        elif kind == "turn.started":
            session.turn_count += 1
            session.active = ActiveTurnView(turn_id=run_id, started_at=iso(at))
            session.last_turn_at = at
            self._turns[run_id] = TurnRef(run_id, session.id, agent_id)
            session.history.append(
                HistoryEntry(
                    role="user",
                    content=str(data.get("message", "")),
                    turn_id=run_id,
                    time=iso(at),
                    context=data.get("context") or None,
                    files=data.get("files") or None,
                )
            )
            self._log(agent_id, event, "info", "turn started", session_id=session.id)
        elif kind == "turn.step_recorded":
            if data.get("kind") == "model" and data.get("tool_calls"):
                session.history.append(
                    HistoryEntry(
                        role="assistant",
                        content=str(data.get("text", "")),
                        turn_id=run_id,
                        time=iso(at),
                        tool_calls=list(data["tool_calls"]),
                    )
                )
        elif kind.startswith("tool."):
            if kind != "tool.called":
                session.history.append(_tool_entry(kind, data, run_id, at))
            self._log_tool(agent_id, event, session_id=session.id)
        elif kind.startswith("turn."):
            outcome = kind.removeprefix("turn.")
            if session.active is not None and session.active.turn_id == run_id:
                session.active = None
            ref = self._turns.get(run_id)
            if ref is not None:
                self._turns[run_id] = TurnRef(run_id, ref.session_id, ref.agent_id, outcome)
            usage = data.get("usage") or {}
            session.history.append(
                HistoryEntry(
                    role="assistant",
                    content=str(data.get("output", "")),
                    turn_id=run_id,
                    time=iso(at),
                    outcome=outcome,
                    error=data.get("error"),
                    usage=usage,
                    response_time_ms=data.get("response_time_ms"),
                )
            )
            self._count_run(agent_id or data.get("agent_id"), data, outcome, turn=True)
            self._log(
                agent_id,
                event,
                _OUTCOME_LEVEL.get(outcome, "info"),
                _finished_message("turn", outcome, data),
                session_id=session.id,
            )

    def _fold_execution(self, event: Event) -> None:
        data, kind, at = event.data, event.type, event.time
        if kind == "execution.requested":
            execution = _Execution(
                id=event.subject,
                agent_id=str(data["agent_id"]),
                namespace=event.namespace,
                trigger=str(data.get("trigger", "webhook")),
                input_data=dict(data.get("input_data") or {}),
                options=dict(data.get("options") or {}),
                created_at=at,
                updated_at=at,
            )
            self._executions[execution.id] = execution
            self._by_agent.setdefault(execution.agent_id, {})[execution.id] = execution
            self._log(
                execution.agent_id,
                event,
                "info",
                f"execution queued (trigger {execution.trigger})",
                execution_id=execution.id,
            )
            return
        execution = self._executions.get(event.subject)
        if execution is None or execution.finished_at is not None:
            return  # nothing moves a finished execution (a late writer lost its race)
        execution.updated_at = at
        agent_id, eid = execution.agent_id, execution.id
        if kind == "execution.started":
            execution.attempts += 1
            execution.status = "running"
            execution.started_at = execution.started_at or at
            worker = data.get("worker", "?")
            if execution.attempts > 1:
                message = f"execution restarted on {worker} (attempt {execution.attempts})"
                self._log(agent_id, event, "warning", message, execution_id=eid)
            else:
                message = f"execution started on {worker}"
                self._log(agent_id, event, "info", message, execution_id=eid)
        elif kind == "execution.step_recorded":
            execution.steps.append(
                ExecutionStep(
                    step=int(data.get("step", 0)),
                    type=data.get("kind", "model"),
                    time=iso(at),
                    text=data.get("text") or None,
                    tool_calls=data.get("tool_calls") or None,
                    plan=data.get("plan") or None,
                    usage=data.get("usage"),
                    duration_ms=data.get("duration_ms"),
                )
            )
        elif kind.startswith("tool."):
            execution.steps.append(
                ExecutionStep(
                    step=int(data.get("step", 0)),
                    type=kind.replace(".", "_"),  # type: ignore[arg-type]
                    time=iso(at),
                    call_id=data.get("call_id"),
                    name=data.get("name"),
                    arguments=data.get("arguments"),
                    content=data.get("content"),
                    error=_tool_error(data) if kind == "tool.failed" else None,
                    duration_ms=data.get("duration_ms"),
                )
            )
            self._log_tool(agent_id, event, execution_id=eid)
        elif kind == "execution.input_required":
            execution.status = "input_required"
            execution.pending = PendingInput(
                step=int(data.get("step", 0)),
                call_id=str(data.get("call_id", "")),
                tool=str(data.get("tool", "")),
                arguments=dict(data.get("arguments") or {}),
                since=iso(at),
            )
            message = f"waiting for input: tool {data.get('tool')} needs approval"
            self._log(agent_id, event, "warning", message, execution_id=eid)
        elif kind == "execution.input_received":
            execution.pending = None
            execution.status = "queued"  # until a worker takes it up again
            answer = "approved" if data.get("approved", True) else "denied"
            self._log(agent_id, event, "info", f"input received: {answer}", execution_id=eid)
        else:  # execution.completed | failed | cancelled
            outcome = kind.removeprefix("execution.")
            execution.status = outcome  # type: ignore[assignment]
            execution.pending = None
            execution.output = data.get("output", "")
            execution.error = data.get("error")
            execution.usage = dict(data.get("usage") or {})
            execution.response_time_ms = data.get("response_time_ms")
            execution.finished_at = at
            self._count_run(agent_id, data, outcome, turn=False)
            self._log(
                agent_id,
                event,
                _OUTCOME_LEVEL.get(outcome, "info"),
                _finished_message("execution", outcome, data),
                execution_id=eid,
            )

    def _fold_budget(self, event: Event) -> None:
        data = event.data
        agent_id = str(data.get("agent_id") or event.subject)
        budget = self._agent(agent_id).budget
        if event.type == "budget.consumed":
            budget.period = data.get("period", budget.period)
            budget.total_tokens = int(data.get("total_tokens", budget.total_tokens))
            budget.total_cost_usd = float(data.get("total_cost_usd", budget.total_cost_usd))
            return
        level = event.type.removeprefix("budget.")
        budget.last_threshold = {**data, "level": level, "time": iso(event.time)}
        ratio = float(data.get("ratio", 0.0))
        message = (
            f"budget {level}: {data.get('kind')} at {ratio:.0%} of the limit"
            f" ({data.get('used')} of {data.get('limit')}, period {data.get('period')})"
        )
        self._log(agent_id, event, "error" if level == "critical" else "warning", message)

    def _fold_instance(self, event: Event) -> None:
        data = event.data
        agent_id = str(data.get("agent_id") or event.subject)
        stats = self._agent(agent_id)
        worker = str(data.get("worker", "?"))
        reason = data.get("reason", "")
        if event.type == "instance.started":
            stats.workers[worker] = None
            cold = float(data.get("cold_start_ms") or 0.0)
            stats.cold_starts += 1
            stats.last_cold_start_ms = cold
            message = f"instance started on {worker} (cold start {cold:g} ms; {reason})"
        else:
            stats.workers.pop(worker, None)
            message = f"instance stopped on {worker} ({reason})"
        self._log(agent_id, event, "info", message)

    # --- helpers ---------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> _Stats:
        stats = self._stats.get(agent_id)
        if stats is None:
            stats = self._stats[agent_id] = _Stats()
        return stats

    def _count_run(
        self, agent_id: str | None, data: dict[str, Any], outcome: str, *, turn: bool
    ) -> None:
        if not agent_id:
            return
        stats = self._agent(agent_id)
        if turn:
            stats.turns += 1
        else:
            stats.executions += 1
        if outcome == "completed":
            stats.succeeded += 1
        else:
            stats.failed += 1
        stats.response_ms_sum += float(data.get("response_time_ms") or 0.0)
        usage = data.get("usage") or {}
        stats.input_tokens += int(usage.get("input_tokens", 0))
        stats.output_tokens += int(usage.get("output_tokens", 0))
        stats.cost_usd += float(usage.get("cost_usd", 0.0))

    def _log(
        self,
        agent_id: str | None,
        event: Event,
        level: LogLevel,
        message: str,
        *,
        session_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        if not agent_id:
            return
        run_id = event.data.get("run_id") or event.data.get("turn_id")
        self._agent(agent_id).log.append(
            LogEntry(
                time=iso(event.time),
                level=level,
                message=message,
                event_type=event.type,
                position=event.position,
                execution_id=execution_id,
                session_id=session_id,
                turn_id=str(run_id) if session_id is not None and run_id else None,
            )
        )

    def _log_tool(self, agent_id: str | None, event: Event, **where: str) -> None:
        data, name = event.data, event.data.get("name")
        if event.type == "tool.called":
            self._log(agent_id, event, "info", f"tool {name} called", **where)
        elif event.type == "tool.completed":
            took = float(data.get("duration_ms") or 0.0)
            self._log(agent_id, event, "info", f"tool {name} returned in {took:g} ms", **where)
        else:
            message = f"tool {name} failed: {data.get('code')}: {data.get('message')}"
            self._log(agent_id, event, "warning", message, **where)


_OUTCOME_LEVEL: dict[str, LogLevel] = {
    "completed": "info",
    "failed": "error",
    "cancelled": "warning",
    "interrupted": "warning",
}


def _finished_message(kind: str, outcome: str, data: dict[str, Any]) -> str:
    usage = data.get("usage") or {}
    tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    took = float(data.get("response_time_ms") or 0.0)
    message = f"{kind} {outcome} in {took:g} ms ({tokens} tokens)"
    error = data.get("error")
    if isinstance(error, dict):
        message += f": {error.get('code')}: {error.get('message')}"
    return message


def _tool_error(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": data.get("code"), "message": data.get("message")}


def _tool_entry(kind: str, data: dict[str, Any], run_id: str, at: datetime) -> HistoryEntry:
    failed = kind == "tool.failed"
    return HistoryEntry(
        role="tool",
        content=str(data.get("message" if failed else "content", "")),
        turn_id=run_id,
        time=iso(at),
        call_id=data.get("call_id"),
        name=data.get("name"),
        error=_tool_error(data) if failed else None,
    )


def _session_fields(s: _Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "namespace": s.namespace,
        "agent_id": s.agent_id,
        "title": s.title,
        "settings": s.settings,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "version": s.version,
        "turn_count": s.turn_count,
        "message_count": len(s.history),
        "active_turn": s.active,
        "last_turn_at": iso(s.last_turn_at) if s.last_turn_at else None,
        "files": list(s.files.values()),
    }


def _execution_view(e: _Execution) -> ExecutionView:
    return ExecutionView(
        id=e.id,
        agent_id=e.agent_id,
        namespace=e.namespace,
        status=e.status,
        trigger=e.trigger,
        input_data=e.input_data,
        options=e.options,
        attempts=e.attempts,
        steps=list(e.steps),
        output=e.output,
        error=e.error,
        usage=e.usage,
        response_time_ms=e.response_time_ms,
        pending_input=e.pending,
        created_at=iso(e.created_at),
        started_at=iso(e.started_at) if e.started_at else None,
        updated_at=iso(e.updated_at),
        finished_at=iso(e.finished_at) if e.finished_at else None,
    )
