"""The runtime projection: sessions, executions, logs, metrics, budgets and instances.

Sessions and executions are folded by their aggregates' own ``evolve``
(:mod:`parley.aggregates.session`, :mod:`parley.aggregates.execution`), the fold the runtime
decides with; this projection keeps the folded states and maps them to views
(:mod:`.runtime_views`). Besides, it notes what each event adds to its agent's activity (a
log line, a run counted), which :mod:`.activity` keeps with budgets and instances. It
follows the store with the shared machinery of
:class:`~parley.edge.projections._base.FoldingProjection` (from position 0,
``applied_position``, read-your-writes waiters): :meth:`apply` an :class:`Event`, read the
views. A deleted session leaves every view, its log lines included.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from parley.aggregates import execution as executions
from parley.aggregates import session as sessions
from parley.aggregates.execution import Execution
from parley.aggregates.session import Session
from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.contracts.runtime import EVENT_TYPES
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.activity import LOG_LEVELS
from parley.edge.projections.activity import LOG_LIMIT
from parley.edge.projections.activity import AgentActivity
from parley.edge.projections.runtime_views import T0
from parley.edge.projections.runtime_views import AgentMetrics
from parley.edge.projections.runtime_views import ExecutionView
from parley.edge.projections.runtime_views import LogEntry
from parley.edge.projections.runtime_views import LogLevel
from parley.edge.projections.runtime_views import SessionDetail
from parley.edge.projections.runtime_views import SessionView
from parley.edge.projections.runtime_views import execution_view
from parley.edge.projections.runtime_views import history_entry
from parley.edge.projections.runtime_views import session_view
from parley.eventstore import EventStore

__all__ = ["ACTIVE_WINDOW", "LOG_LIMIT", "LOG_LEVELS", "RuntimeProjection", "TurnRef"]

ACTIVE_WINDOW = timedelta(minutes=15)
"""A conversation with a turn this recent counts as active."""

log = logging.getLogger(__name__)

_CATEGORIES = ("session-", "execution-", "budget-", "instance-")


@dataclass(frozen=True, slots=True)
class TurnRef:
    """Where a turn lives: its session and agent, and how it ended (None while running)."""

    turn_id: str
    session_id: str
    agent_id: str | None
    outcome: str | None = None


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
        self.activity = AgentActivity()
        """Each agent's log, run counts, budget and instances."""
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

    def session_agent(self, namespace: str, session_id: str) -> tuple[bool, str | None]:
        """Whether ``namespace`` has the live session, and its agent's id (a check that needs
        no view of it)."""
        state = self._sessions.get(session_id)
        if state is None or state.namespace != namespace:
            return False, None
        return True, state.agent_id

    def session_brief(self, namespace: str, session_id: str) -> SessionView | None:
        """A live session of ``namespace`` without its history (what a check needs: it does
        not grow with the conversation), if any."""
        state = self._sessions.get(session_id)
        if state is None or state.namespace != namespace:
            return None
        return session_view(SessionView, state)

    def sessions(self, namespace: str, agent_id: str | None = None) -> list[SessionView]:
        """The live sessions of ``namespace`` (of ``agent_id`` when given), unordered."""
        return [session_view(SessionView, s) for s in self._live(namespace, agent_id)]

    def session_ids(self, namespace: str, agent_id: str | None = None) -> list[str]:
        """Ids of the live sessions of ``namespace`` (of ``agent_id`` when given)."""
        return [s.id for s in self._live(namespace, agent_id)]

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

    def execution_states(self, namespace: str, agent_id: str) -> list[Execution]:
        """The executions of ``agent_id`` as folded (no views made), oldest first."""
        return [e for e in self._of_agent(agent_id) if e.namespace == namespace]

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
        agent version ``version``, when given), oldest first (a deleted session's lines left
        out)."""
        live = self._sessions.__contains__
        return self.activity.logs(
            agent_id, live, level=level, since=since, limit=limit, version=version
        )

    def metrics(
        self, agent_id: str, now: datetime | None = None, version: int | None = None
    ) -> AgentMetrics:
        """What ``agent_id``'s runs (on agent version ``version``, when given) added up to
        (zeros for an agent, or a version, that never ran)."""
        horizon = (now or utcnow()) - ACTIVE_WINDOW
        own = [s for s in self._sessions.values() if s.agent_id == agent_id]
        active = sum(1 for s in own if s.last_turn_at is not None and s.last_turn_at >= horizon)
        return self.activity.metrics(agent_id, sessions=len(own), active=active, version=version)

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
            self.activity.budget_event(event)
        else:
            self.activity.instance_event(event)

    def _fold_session(self, event: Event) -> None:
        before = self._sessions.get(event.subject)
        if before is None and not sessions.opens(event):
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

    # --- what each event adds to its agent's activity: a log line, a run counted ---------

    def _session_activity(self, event: Event, session: Session) -> None:
        note = self._note
        data, kind, agent_id = event.data, event.type, session.agent_id
        if kind == "turn.started":
            note(agent_id, event, "info", "turn started", session_id=session.id)
        elif kind.startswith("tool."):
            self._log_tool(agent_id, event, session_id=session.id)
        elif kind in sessions.FINISHED:
            outcome = kind.removeprefix("turn.")
            self.activity.count_run(agent_id or data.get("agent_id"), data, outcome, turn=True)
            note(
                agent_id,
                event,
                _OUTCOME_LEVEL.get(outcome, "info"),
                _finished_message("turn", outcome, data),
                session_id=session.id,
            )

    def _execution_activity(self, event: Event, execution: Execution) -> None:
        note = self._note
        data, kind = event.data, event.type
        agent_id, eid = execution.agent_id, execution.id
        if kind == "execution.requested":
            message = f"execution queued (trigger {execution.trigger})"
            note(agent_id, event, "info", message, execution_id=eid)
        elif kind == "execution.started":
            worker = data.get("worker", "?")
            if execution.attempts > 1:
                message = f"execution restarted on {worker} (attempt {execution.attempts})"
                note(agent_id, event, "warning", message, execution_id=eid)
            else:
                message = f"execution started on {worker}"
                note(agent_id, event, "info", message, execution_id=eid)
        elif kind.startswith("tool."):
            self._log_tool(agent_id, event, execution_id=eid)
        elif kind == "execution.input_required":
            message = f"waiting for input: tool {data.get('tool')} needs approval"
            note(agent_id, event, "warning", message, execution_id=eid)
        elif kind == "execution.input_received":
            answer = "approved" if data.get("approved", True) else "denied"
            note(agent_id, event, "info", f"input received: {answer}", execution_id=eid)
        elif execution.finished:
            outcome = execution.status
            self.activity.count_run(agent_id, data, outcome, turn=False)
            note(
                agent_id,
                event,
                _OUTCOME_LEVEL.get(outcome, "info"),
                _finished_message("execution", outcome, data),
                execution_id=eid,
            )

    def _note(
        self, agent_id: str | None, event: Event, level: LogLevel, message: str, **where: str
    ) -> None:
        """Log ``event`` for ``agent_id`` (``where``: its session or execution), with the
        agent version its run is on."""
        run_id = event.data.get("run_id") or event.data.get("turn_id") or where.get("execution_id")
        version = self._version_of(event, str(run_id or ""))
        self.activity.log(agent_id, event, level, message, agent_version=version, **where)

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
        note = self._note
        data, name = event.data, event.data.get("name")
        if event.type == "tool.called":
            note(agent_id, event, "info", f"tool {name} called", **where)
        elif event.type == "tool.completed":
            took = float(data.get("duration_ms") or 0.0)
            note(agent_id, event, "info", f"tool {name} returned in {took:g} ms", **where)
        else:
            message = f"tool {name} failed: {data.get('code')}: {data.get('message')}"
            note(agent_id, event, "warning", message, **where)

    # --- helpers ---------------------------------------------------------------------------

    def _live(self, namespace: str, agent_id: str | None) -> list[Session]:
        return [
            s
            for s in self._sessions.values()
            if s.namespace == namespace and (agent_id is None or s.agent_id == agent_id)
        ]

    def _of_agent(self, agent_id: str) -> list[Execution]:
        return [self._executions[e] for e in self._by_agent.get(agent_id, {})]


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
