"""The runtime projection: sessions, executions, logs, metrics, budgets and instances.

Sessions and executions are folded by their aggregates' own ``evolve``
(:mod:`parley.aggregates.session`, :mod:`parley.aggregates.execution`), the fold the runtime
decides with; this projection keeps the folded states and maps them to views
(:mod:`.runtime_views`). Besides, it hands every event to :mod:`.activity`, which keeps
each agent's log, run counts, budget and instances. It follows the store with the shared
machinery of :class:`~parley.edge.projections._base.FoldingProjection` (from position 0,
``applied_position``, read-your-writes waiters): :meth:`apply` an :class:`Event`, read the
views. A deleted session leaves every view, its log lines included.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from parley.aggregates import execution as executions
from parley.aggregates import session as sessions
from parley.aggregates.execution import Execution
from parley.aggregates.session import Session
from parley.contracts.envelope import Event, utcnow
from parley.contracts.runtime import EVENT_TYPES
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.activity import LOG_LEVELS, LOG_LIMIT, AgentActivity
from parley.edge.projections.runtime_views import (
    T0,
    AgentMetrics,
    ExecutionView,
    LogEntry,
    LogLevel,
    SessionDetail,
    SessionView,
    execution_view,
    history_entry,
    session_view,
)
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
    ) -> list[LogEntry]:
        """The newest ``limit`` log lines of ``agent_id`` at ``level`` or above, oldest first
        (a deleted session's lines left out)."""
        live = self._sessions.__contains__
        return self.activity.logs(agent_id, live, level=level, since=since, limit=limit)

    def metrics(self, agent_id: str, now: datetime | None = None) -> AgentMetrics:
        """What ``agent_id``'s runs added up to (zeros for an agent that never ran)."""
        horizon = (now or utcnow()) - ACTIVE_WINDOW
        own = [s for s in self._sessions.values() if s.agent_id == agent_id]
        active = sum(1 for s in own if s.last_turn_at is not None and s.last_turn_at >= horizon)
        return self.activity.metrics(agent_id, sessions=len(own), active=active)

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
        self.activity.session_event(event, after)

    def _fold_execution(self, event: Event) -> None:
        before = self._executions.get(event.subject)
        if before is not None and before.finished:
            return  # nothing moves a finished execution (a late writer lost its race)
        if before is None and event.type != "execution.requested":
            return
        after = executions.evolve(before, event)
        self._executions[after.id] = after
        self._by_agent.setdefault(after.agent_id, {})[after.id] = None
        self.activity.execution_event(event, after)

    # --- helpers ---------------------------------------------------------------------------

    def _live(self, namespace: str, agent_id: str | None) -> list[Session]:
        return [
            s
            for s in self._sessions.values()
            if s.namespace == namespace and (agent_id is None or s.agent_id == agent_id)
        ]

    def _of_agent(self, agent_id: str) -> list[Execution]:
        return [self._executions[e] for e in self._by_agent.get(agent_id, {})]
