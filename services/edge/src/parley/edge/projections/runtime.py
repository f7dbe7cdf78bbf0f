"""The runtime projection: sessions, executions, logs, metrics, budgets and instances.

Sessions and executions are folded by their aggregates' own ``evolve``
(:mod:`parley.aggregates.session`, :mod:`parley.aggregates.execution`), the fold the runtime
decides with; this projection keeps the folded states and maps them to views
(:mod:`.runtime_views`). Besides, it keeps each agent's activity: a log line per event,
run counts, budget and instances. It follows the store with the shared machinery of
:class:`~parley.edge.projections._base.FoldingProjection` (from position 0,
``applied_position``, read-your-writes waiters): :meth:`apply` an :class:`Event`, read the
views. A deleted session leaves every view, its log lines included.
"""

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from parley.aggregates import execution as executions
from parley.aggregates import session as sessions
from parley.aggregates.execution import Execution
from parley.aggregates.session import Session
from parley.contracts.envelope import Event, utcnow
from parley.contracts.runtime import EVENT_TYPES
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.runtime_views import (
    T0,
    AgentMetrics,
    BudgetView,
    ExecutionView,
    InstancesView,
    LogEntry,
    LogLevel,
    SessionDetail,
    SessionView,
    TokenTotals,
    execution_view,
    history_entry,
    session_view,
)
from parley.edge.views import iso
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
    versions: dict[int, "_Stats"] = field(default_factory=dict)
    """The run figures of each version of the agent that ran."""


class RuntimeProjection(FoldingProjection):
    """What the runtime did, by session, execution and agent."""

    prefix = ""  # several categories: the fold picks its own by stream name
    name = "runtime-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._sessions: dict[str, Session] = {}
        self._turns: dict[str, str] = {}
        """Turn id → its session's id."""
        self._executions: dict[str, Execution] = {}
        self._by_agent: dict[str, dict[str, None]] = {}
        self._stats: dict[str, _Stats] = {}
        self._run_versions: dict[str, int] = {}
        """Running turn or execution id → the agent version it runs (from its start)."""

    # --- reads ---------------------------------------------------------------------------

    def session(self, namespace: str, session_id: str) -> SessionDetail | None:
        """A live session of ``namespace`` with its history, if any."""
        state = self._sessions.get(session_id)
        if state is None or state.namespace != namespace:
            return None
        history = [history_entry(entry) for entry in state.entries]
        return session_view(SessionDetail, state, history=history)

    def sessions(self, namespace: str, agent_id: str | None = None) -> list[SessionView]:
        """The live sessions of ``namespace`` (of ``agent_id`` when given), unordered."""
        return [
            session_view(SessionView, s)
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
        session_id = self._turns.get(turn_id)
        state = self._sessions.get(session_id) if session_id is not None else None
        if state is None or turn_id not in state.outcomes:
            return None
        return TurnRef(turn_id, state.id, state.agent_id, state.outcomes[turn_id])

    def execution(self, namespace: str, agent_id: str, execution_id: str) -> ExecutionView | None:
        """One execution of ``agent_id``, if any."""
        state = self._executions.get(execution_id)
        if state is None or state.agent_id != agent_id or state.namespace != namespace:
            return None
        return execution_view(state)

    def executions(
        self,
        namespace: str,
        agent_id: str,
        predicate: Callable[[ExecutionView], bool] | None = None,
    ) -> list[ExecutionView]:
        """The executions of ``agent_id`` for which ``predicate`` holds, oldest first."""
        views = (execution_view(e) for e in self._of_agent(agent_id) if e.namespace == namespace)
        return [v for v in views if predicate is None or predicate(v)]

    def latest_output(self, namespace: str, agent_id: str) -> ExecutionView | None:
        """The most recently finished completed execution of ``agent_id``."""
        done = [
            e
            for e in self._of_agent(agent_id)
            if e.namespace == namespace and e.status == "completed"
        ]
        if not done:
            return None
        return execution_view(max(done, key=lambda e: (e.finished_at or e.updated_at or T0, e.id)))

    def logs(
        self,
        agent_id: str,
        *,
        level: LogLevel = "info",
        since: datetime | None = None,
        limit: int = 100,
        version: int | None = None,
    ) -> list[LogEntry]:
        """The newest ``limit`` log lines of ``agent_id`` at ``level`` or above (of runs on
        agent version ``version``, when given), oldest first."""
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
            if version is not None and entry.agent_version != version:
                continue
            if entry.session_id is not None and entry.session_id not in self._sessions:
                continue  # the session was deleted: it leaves the log too
            picked.append(entry)
        picked.reverse()
        return picked

    def metrics(
        self, agent_id: str, now: datetime | None = None, version: int | None = None
    ) -> AgentMetrics:
        """What ``agent_id``'s runs (on agent version ``version``, when given) added up to
        (zeros for an agent, or a version, that never ran)."""
        agent = self._stats.get(agent_id) or _Stats()
        stats = agent if version is None else agent.versions.get(version) or _Stats()
        horizon = (now or utcnow()) - ACTIVE_WINDOW
        own = [s for s in self._sessions.values() if s.agent_id == agent_id]
        active = sum(1 for s in own if s.last_turn_at is not None and s.last_turn_at >= horizon)
        total = stats.turns + stats.executions
        return AgentMetrics(
            agent_id=agent_id,
            agent_version=version,
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
            budget=agent.budget,
            instances=InstancesView(
                count=len(agent.workers),
                workers=list(agent.workers),
                cold_starts=agent.cold_starts,
                last_cold_start_ms=agent.last_cold_start_ms,
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
        before = self._sessions.get(event.subject)
        if before is None and event.type != "session.created":
            return  # deleted, or a stream that never opened
        after = sessions.evolve(before, event)
        if after.deleted:
            del self._sessions[after.id]
            for turn_id in after.outcomes:
                self._turns.pop(turn_id, None)
            return
        self._sessions[after.id] = after
        if after.active is not None:
            self._turns[after.active.turn_id] = after.id
        self._session_activity(event, after)

    def _fold_execution(self, event: Event) -> None:
        before = self._executions.get(event.subject)
        if before is not None and before.finished:
            return  # nothing moves a finished execution (a late writer lost its race)
        if before is None and event.type != "execution.requested":
            return
        after = executions.evolve(before, event)
        self._executions[after.id] = after
        self._by_agent.setdefault(after.agent_id, {})[after.id] = None
        self._execution_activity(event, after)

    # --- each agent's activity: a log line per event, run counts ---------------------------

    def _session_activity(self, event: Event, session: Session) -> None:
        data, kind, agent_id = event.data, event.type, session.agent_id
        if kind == "turn.started":
            self._log(agent_id, event, "info", "turn started", session_id=session.id)
        elif kind.startswith("tool."):
            self._log_tool(agent_id, event, session_id=session.id)
        elif kind in sessions.FINISHED:
            outcome = kind.removeprefix("turn.")
            self._count_run(agent_id or data.get("agent_id"), data, outcome, turn=True)
            self._log(
                agent_id,
                event,
                _OUTCOME_LEVEL.get(outcome, "info"),
                _finished_message("turn", outcome, data),
                session_id=session.id,
            )

    def _execution_activity(self, event: Event, execution: Execution) -> None:
        data, kind = event.data, event.type
        agent_id, eid = execution.agent_id, execution.id
        if kind == "execution.requested":
            message = f"execution queued (trigger {execution.trigger})"
            self._log(agent_id, event, "info", message, execution_id=eid)
        elif kind == "execution.started":
            worker = data.get("worker", "?")
            if execution.attempts > 1:
                message = f"execution restarted on {worker} (attempt {execution.attempts})"
                self._log(agent_id, event, "warning", message, execution_id=eid)
            else:
                message = f"execution started on {worker}"
                self._log(agent_id, event, "info", message, execution_id=eid)
        elif kind.startswith("tool."):
            self._log_tool(agent_id, event, execution_id=eid)
        elif kind == "execution.input_required":
            message = f"waiting for input: tool {data.get('tool')} needs approval"
            self._log(agent_id, event, "warning", message, execution_id=eid)
        elif kind == "execution.input_received":
            answer = "approved" if data.get("approved", True) else "denied"
            self._log(agent_id, event, "info", f"input received: {answer}", execution_id=eid)
        elif execution.finished:
            outcome = execution.status
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

    def _of_agent(self, agent_id: str) -> list[Execution]:
        return [self._executions[e] for e in self._by_agent.get(agent_id, {})]

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
        agent = self._agent(agent_id)
        counted = [agent]
        if isinstance(version := data.get("agent_version"), int):
            counted.append(agent.versions.setdefault(version, _Stats()))
        usage = data.get("usage") or {}
        for stats in counted:
            if turn:
                stats.turns += 1
            else:
                stats.executions += 1
            if outcome == "completed":
                stats.succeeded += 1
            else:
                stats.failed += 1
            stats.response_ms_sum += float(data.get("response_time_ms") or 0.0)
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
                agent_version=self._version_of(event, str(run_id or execution_id or "")),
            )
        )

    def _version_of(self, event: Event, run_id: str) -> int | None:
        """The agent version of the run an event belongs to: recorded on its start and end,
        remembered in between for its steps and tools."""
        version = event.data.get("agent_version")
        if event.type in ("turn.started", "execution.started") and isinstance(version, int):
            self._run_versions[run_id] = version
        elif event.type in _RUN_ENDS:
            self._run_versions.pop(run_id, None)
        else:
            version = self._run_versions.get(run_id)
        return version if isinstance(version, int) else None

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


_RUN_ENDS = sessions.FINISHED | {f"execution.{status}" for status in executions.FINAL}

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
