"""Each agent's activity, kept by the runtime projection (:mod:`.runtime`): its log lines,
run counts, tokens and cost, budget and warm instances, and their views (logs, metrics).

The runtime projection says what a session's or an execution's event adds (a log line, a
run counted); budget and instance events, which only feed the activity, are read here.
"""

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from parley.contracts.envelope import Event
from parley.edge.projections.runtime_views import AgentMetrics
from parley.edge.projections.runtime_views import BudgetView
from parley.edge.projections.runtime_views import InstancesView
from parley.edge.projections.runtime_views import LogEntry
from parley.edge.projections.runtime_views import LogLevel
from parley.edge.projections.runtime_views import TokenTotals
from parley.edge.views import as_view
from parley.edge.views import iso

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
    versions: dict[int, "_Stats"] = msgspec.field(default_factory=dict)
    """The run figures of each version of the agent that ran."""


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
        version: int | None = None,
    ) -> list[LogEntry]:
        """The newest ``limit`` log lines of ``agent_id`` at ``level`` or above (of runs on
        agent version ``version``, when given), oldest first; lines of a session for which
        ``live_session`` is false are left out."""
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
            if entry.session_id is not None and not live_session(entry.session_id):
                continue  # the session was deleted: it leaves the log too
            picked.append(entry)
        picked.reverse()
        return picked

    def metrics(
        self, agent_id: str, *, sessions: int, active: int, version: int | None = None
    ) -> AgentMetrics:
        """What ``agent_id``'s runs (on agent version ``version``, when given) added up to
        (zeros for an agent, or a version, that never ran), with its ``sessions`` and
        ``active`` conversations as the sessions say; budget and instances are the agent's."""
        agent = self._stats.get(agent_id) or _Stats()
        stats = agent if version is None else agent.versions.get(version) or _Stats()
        total = stats.turns + stats.executions
        tokens = stats.input_tokens + stats.output_tokens
        workers = list(agent.workers)
        return as_view(
            AgentMetrics,
            stats,  # turns, executions, succeeded, failed
            agent_id=agent_id,
            agent_version=version,
            budget=agent.budget,
            total_requests=total,
            success_rate=round(stats.succeeded / total, 4) if total else None,
            average_response_time_ms=round(stats.response_ms_sum / total, 3) if total else None,
            active_conversations=active,
            sessions=sessions,
            tokens=TokenTotals(input=stats.input_tokens, output=stats.output_tokens, total=tokens),
            cost_usd=round(stats.cost_usd, 8),
            instances=as_view(InstancesView, agent, count=len(workers), workers=workers),
        )

    # --- records -------------------------------------------------------------------------

    def log(
        self,
        agent_id: str | None,
        event: Event,
        level: LogLevel,
        message: str,
        *,
        session_id: str | None = None,
        execution_id: str | None = None,
        agent_version: int | None = None,
    ) -> None:
        """Add ``event``'s log line to ``agent_id``'s log (none without an agent), of a run on
        ``agent_version`` when known."""
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
                agent_version=agent_version,
            )
        )

    def count_run(
        self, agent_id: str | None, data: dict[str, Any], outcome: str, *, turn: bool
    ) -> None:
        """Count a finished turn or execution (``data``: its event's) for ``agent_id``."""
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
        self.log(agent_id, event, "error" if level == "critical" else "warning", message)

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
        self.log(agent_id, event, "info", message)

    # --- helpers ---------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> _Stats:
        stats = self._stats.get(agent_id)
        if stats is None:
            stats = self._stats[agent_id] = _Stats()
        return stats
