"""The tasks projection: Contract Net tasks and cluster group runs, as the API shows them.

Tasks come from ``task-`` streams, group runs from ``grouprun-`` streams. Both are folded by
the aggregates' own ``evolve`` (:mod:`parley.aggregates.task`, :mod:`parley.aggregates.grouprun`),
the same fold the tasks service decides on; this module only maps the folded state to its
view (built when read, kept until the next event of that task or run), plus a task's recent
events in short.
"""

from typing import Any
from typing import Literal

import msgspec

from parley.aggregates import grouprun
from parley.aggregates import task
from parley.aggregates.award import Bid
from parley.aggregates.grouprun import Run
from parley.aggregates.task import Task
from parley.contracts.envelope import Event
from parley.contracts.tasks import EVENT_TYPES
from parley.contracts.tasks import WinningBid
from parley.edge.projections._base import FoldingProjection
from parley.edge.views import as_view
from parley.edge.views import iso
from parley.edge.views import iso_or_none
from parley.eventstore import EventStore

__all__ = [
    "AgentRunResult",
    "ProposalView",
    "RunView",
    "TaskEventSummary",
    "TaskView",
    "TasksProjection",
]

_EVENTS_KEPT = 200


class ProposalView(msgspec.Struct, kw_only=True):
    """One bid and what became of it."""

    agent_id: str
    estimated_time_s: float
    cost: float
    confidence: float
    received_at: str
    status: Literal["pending", "accepted", "rejected", "failed"] = "pending"
    reason: str | None = None
    """Why it was rejected (`lost`, `late`, `invalid`) or why the awarded agent failed."""


class TaskEventSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event of the task, in short."""

    type: str
    time: str
    version: int
    agent_id: str | None = None


class TaskView(msgspec.Struct, kw_only=True):
    """A task as the API shows it."""

    task_id: str
    namespace: str
    name: str
    description: str
    data: Any
    participants: list[str]
    requirements: dict[str, Any] | None
    timeout_seconds: float
    status: str
    """`created`, `announced`, `awarded` (in progress), `completed`, `failed`, `cancelled`."""
    strategy: str | None = None
    candidates: list[str] = []
    reply_by: str | None = None
    assigned_to: str | None = None
    round: int = 0
    proposals_received: int = 0
    proposals: list[ProposalView] = []
    refusals: dict[str, str] = {}
    winning_bid: WinningBid | None = None
    progress: float | None = None
    """Percent done, as the contractor last reported it."""
    progress_note: str | None = None
    result: Any = None
    failure_reason: str | None = None
    failures: dict[str, str] = {}
    subtasks: list[dict[str, Any]] = []
    """Always empty: subtasks are not modelled yet."""
    events: list[TaskEventSummary] = []
    created_at: str
    updated_at: str
    awarded_at: str | None = None
    finished_at: str | None = None
    version: int


class AgentRunResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One agent's part in a group run."""

    agent_id: str
    stage: str
    status: Literal["requested", "completed", "failed", "cancelled"]
    input: Any = None
    output: Any = None
    error: str | None = None


class RunView(msgspec.Struct, kw_only=True):
    """A cluster group run."""

    run_id: str
    namespace: str
    cluster: str
    strategy: str
    agent_ids: list[str]
    input: Any
    status: Literal["running", "completed", "failed"]
    results: list[AgentRunResult] = []
    result: Any = None
    winner: str | None = None
    cancelled: list[str] = []
    error: str | None = None
    budget: dict[str, Any] | None = None
    created_at: str
    updated_at: str
    finished_at: str | None = None
    version: int


class _Folded:
    """A task or run as folded, its recent events in short, and its view once built."""

    __slots__ = ("events", "state", "view")

    def __init__(self, state: Any) -> None:
        self.state = state
        self.events: list[TaskEventSummary] = []
        self.view: Any = None


class TasksProjection(FoldingProjection):
    """Tasks and group runs by namespace and id."""

    prefix = ""  # two prefixes: see fold
    name = "tasks-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._tasks: dict[tuple[str, str], _Folded] = {}  # by (namespace, id): an id is
        self._runs: dict[tuple[str, str], _Folded] = {}  # only unique in its namespace

    def task(self, namespace: str, task_id: str) -> TaskView | None:
        """The task, if it exists in ``namespace``."""
        folded = self._tasks.get((namespace, task_id))
        if folded is None:
            return None
        return _task_view(folded)

    def tasks(self, namespace: str) -> list[TaskView]:
        """Every task of ``namespace``."""
        return [_task_view(f) for f in self._tasks.values() if f.state.namespace == namespace]

    def run(self, namespace: str, cluster: str, run_id: str) -> RunView | None:
        """The group run of ``cluster``, if it exists in ``namespace``."""
        folded = self._runs.get((namespace, run_id))
        if folded is None:
            return None
        state: Run = folded.state
        if state.cluster != cluster:
            return None
        return _run_view(folded)

    def fold(self, event: Event) -> None:
        """Fold task and group-run events with the aggregates' ``evolve``."""
        if event.stream.startswith("task-"):
            folded = _evolve(self._tasks, task.evolve, event)
            if folded is not None and event.type in EVENT_TYPES:
                agent = event.data.get("agent_id")
                summary = TaskEventSummary(
                    type=event.type,
                    time=iso(event.time),
                    version=event.version,
                    agent_id=agent if isinstance(agent, str) else None,
                )
                folded.events.append(summary)
                del folded.events[:-_EVENTS_KEPT]
        elif event.stream.startswith("grouprun-"):
            _evolve(self._runs, grouprun.evolve, event)


def _evolve(known: dict[tuple[str, str], _Folded], evolve: Any, event: Event) -> _Folded | None:
    """Fold ``event`` into its task or run (a create starts it afresh)."""
    before = known.get((event.namespace, event.subject))
    state = evolve(before.state if before is not None else None, event)
    if state is None:
        return None
    folded = before
    if folded is None or event.version == 1:
        folded = known[(state.namespace, state.id)] = _Folded(state)
    folded.state, folded.view = state, None
    return folded


def _task_view(folded: _Folded) -> TaskView:
    if folded.view is not None:
        return folded.view  # type: ignore[no-any-return]
    state: Task = folded.state
    spec = state.spec
    bid = state.bids.get(state.contractor) if state.contractor else None
    winning = None
    if bid is not None and state.award_score is not None:
        winning = as_view(WinningBid, bid.proposal, agent_id=bid.agent_id, score=state.award_score)
    folded.view = view = as_view(
        TaskView,
        state,
        **msgspec.to_builtins(spec),  # name, description, data, participants, requirements, ...
        task_id=state.id,
        reply_by=iso_or_none(state.reply_by),
        assigned_to=state.contractor,
        proposals_received=len(state.bids),
        proposals=[_proposal_view(state, b) for b in state.bids.values()],
        winning_bid=winning,
        progress=100.0 if state.status == "completed" else state.progress,
        progress_note=state.progress_note or None,
        failure_reason=state.reason,
        events=list(folded.events),
        created_at=iso(state.created_at),
        updated_at=iso(state.updated_at),
        awarded_at=iso_or_none(state.awarded_at),
        finished_at=iso_or_none(state.finished_at),
    )
    return view


def _proposal_view(state: Task, bid: Bid) -> ProposalView:
    """A bid and what became of it: failed, accepted (the contractor), rejected or pending."""
    agent = bid.agent_id
    status: Literal["pending", "accepted", "rejected", "failed"] = "pending"
    reason = None
    if agent in state.failures:
        status, reason = "failed", state.failures[agent]
    elif agent == state.contractor:
        status = "accepted"
    elif agent in state.rejected:
        status, reason = "rejected", state.rejected[agent]
    received_at = iso(bid.received_at or state.created_at)
    return as_view(  # the proposal's time, cost and confidence, and what became of it
        ProposalView,
        bid.proposal,
        agent_id=agent,
        received_at=received_at,
        status=status,
        reason=reason,
    )


def _run_view(folded: _Folded) -> RunView:
    if folded.view is not None:
        return folded.view  # type: ignore[no-any-return]
    state: Run = folded.state
    parts: list[AgentRunResult] = []
    for message_id, request in state.requests.items():
        part = AgentRunResult(
            agent_id=request.agent_id, stage=request.stage, status="requested", input=request.input
        )
        result = state.results.get(message_id)
        if result is not None:
            part.status = "completed" if result.ok else "failed"
            part.output, part.error = result.output, result.error
        elif state.status != "running" and request.agent_id in state.cancelled:
            part.status = "cancelled"
        parts.append(part)
    folded.view = view = as_view(
        RunView,
        state,
        run_id=state.id,
        results=parts,
        budget=msgspec.to_builtins(state.budget) if state.budget else None,
        created_at=iso(state.started_at),
        updated_at=iso(state.updated_at),
        finished_at=iso_or_none(state.finished_at),
    )
    return view
