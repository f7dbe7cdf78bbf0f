"""Each agent's activity, as the runtime projection (:mod:`.runtime`) sees its events: a log
line per event, run counts, tokens and cost, budget and warm instances.

The runtime projection folds sessions and executions, then hands each event (with the state
it folded) to :class:`AgentActivity`; budget and instance events come straight here.
"""

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from parley.aggregates import session as sessions
from parley.aggregates.execution import Execution
from parley.aggregates.session import Session
from parley.contracts.envelope import Event
from parley.edge.projections.runtime_views import (
    AgentMetrics,
    BudgetView,
    InstancesView,
    LogEntry,
    LogLevel,
    TokenTotals,
)
from parley.edge.views import as_view, iso

__all__ = ["LOG_LEVELS", "LOG_LIMIT", "AgentActivity"]

LOG_LIMIT = 5_000
"""Log lines kept per agent (the oldest go first)."""
LOG_LEVELS: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
"""Log levels, lowest first."""


class _Stats(msgspec.Struct, kw_only=True):
    """One agent's activity; the fields named as in its views are shown as they are."""

    turns: int = 0
    executions: int = 0
    succeeded: int = 0
    failed: int = 0
    response_ms_sum: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    budget: BudgetView = msgspec.field(default_factory=BudgetView)
    workers: dict[str, None] = msgspec.field(default_factory=dict)
    """The warm instances' workers, in the order they started."""
    cold_starts: int = 0
    last_cold_start_ms: float | None = None
    log: deque[LogEntry] = msgspec.field(default_factory=lambda: deque(maxlen=LOG_LIMIT))


class AgentActivity:
    """The log, run counts, budget and instances of every agent, by agent id."""

    def __init__(self) -> None:
        self._stats: dict[str, _Stats] = {}

    # --- reads ---------------------------------------------------------------------------

    def logs(
        self,
        agent_id: str,
        live_session: Callable[[str], bool],
        *,
        level: LogLevel = "info",
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """The newest ``limit`` log lines of ``agent_id`` at ``level`` or above, oldest first;
        lines of a session for which ``live_session`` is false are left out."""
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
            if entry.session_id is not None and not live_session(entry.session_id):
                continue  # the session was deleted: it leaves the log too
            picked.append(entry)
        picked.reverse()
        return picked

    def metrics(self, agent_id: str, *, sessions: int, active: int) -> AgentMetrics:
        """What ``agent_id``'s runs added up to (zeros for an agent that never ran), with its
        ``sessions`` and ``active`` conversations as the sessions say."""
        stats = self._stats.get(agent_id) or _Stats()
        total = stats.turns + stats.executions
        tokens = stats.input_tokens + stats.output_tokens
        workers = list(stats.workers)
        return as_view(
            AgentMetrics,
            stats,  # turns, executions, succeeded, failed, budget
            agent_id=agent_id,
            total_requests=total,
            success_rate=round(stats.succeeded / total, 4) if total else None,
            average_response_time_ms=round(stats.response_ms_sum / total, 3) if total else None,
            active_conversations=active,
            sessions=sessions,
            tokens=TokenTotals(input=stats.input_tokens, output=stats.output_tokens, total=tokens),
            cost_usd=round(stats.cost_usd, 8),
            instances=as_view(InstancesView, stats, count=len(workers), workers=workers),
        )

    # --- events --------------------------------------------------------------------------

    def session_event(self, event: Event, session: Session) -> None:
        """A session's event, ``session`` as folded with it."""
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

    def execution_event(self, event: Event, execution: Execution) -> None:
        """An execution's event, ``execution`` as folded with it."""
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

    def budget_event(self, event: Event) -> None:
        """A ``budget-`` stream's event: spend so far, or a threshold crossed."""
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

    def instance_event(self, event: Event) -> None:
        """An ``instance-`` stream's event: a warm instance started or stopped."""
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
