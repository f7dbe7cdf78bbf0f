"""The tasks projection: Contract Net tasks and cluster group runs, folded for the API.

Tasks come from ``task-`` streams, group runs from ``grouprun-`` streams; both are views
(status, proposals, the winning bid, results), so the fold here is the view's own.
"""

from typing import Any, Literal

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.tasks import (
    EVENT_TYPES,
    RUN_EVENT_TYPES,
    CfpSent,
    ProposalReceived,
    RunAgentResult,
    RunFinishedEvent,
    RunRequested,
    RunStarted,
    TaskAwarded,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskProgress,
    TaskRefused,
    TaskRejected,
    TaskSpec,
    WinningBid,
)
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import iso
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


class TasksProjection(FoldingProjection):
    """Tasks and group runs by namespace and id."""

    prefix = ""  # two prefixes: see fold
    name = "tasks-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._tasks: dict[str, TaskView] = {}
        self._runs: dict[str, RunView] = {}

    def task(self, namespace: str, task_id: str) -> TaskView | None:
        """The task, if it exists in ``namespace``."""
        view = self._tasks.get(task_id)
        return view if view is not None and view.namespace == namespace else None

    def tasks(self, namespace: str) -> list[TaskView]:
        """Every task of ``namespace``."""
        return [v for v in self._tasks.values() if v.namespace == namespace]

    def run(self, namespace: str, cluster: str, run_id: str) -> RunView | None:
        """The group run of ``cluster``, if it exists in ``namespace``."""
        view = self._runs.get(run_id)
        if view is None or view.namespace != namespace or view.cluster != cluster:
            return None
        return view

    def fold(self, event: Event) -> None:
        """Fold task and group-run events."""
        if event.stream.startswith("task-"):
            self._fold_task(event)
        elif event.stream.startswith("grouprun-"):
            self._fold_run(event)

    def _fold_task(self, event: Event) -> None:
        payload_type = EVENT_TYPES.get(event.type)
        if payload_type is None:
            return
        data = msgspec.convert(event.data, payload_type)
        at = iso(event.time)
        if isinstance(data, TaskCreated):
            self._tasks[data.task_id] = _new_task(data.task_id, event, data.spec)
        view = self._tasks.get(event.subject)
        if view is None:
            return
        view.version, view.updated_at = event.version, at
        agent = getattr(data, "agent_id", None)
        view.events.append(
            TaskEventSummary(type=event.type, time=at, version=event.version, agent_id=agent)
        )
        del view.events[:-_EVENTS_KEPT]
        by_agent = {p.agent_id: p for p in view.proposals}
        match data:
            case CfpSent():
                view.status, view.strategy = "announced", data.strategy
                view.candidates, view.reply_by = list(data.candidates), iso(data.reply_by)
            case ProposalReceived():
                p = data.proposal
                view.proposals.append(
                    ProposalView(
                        agent_id=data.agent_id,
                        estimated_time_s=p.estimated_time_s,
                        cost=p.cost,
                        confidence=p.confidence,
                        received_at=at,
                    )
                )
                view.proposals_received = len(view.proposals)
            case TaskRefused():
                view.refusals[data.agent_id] = data.reason
            case TaskRejected():
                if (rejected := by_agent.get(data.agent_id)) is not None:
                    rejected.status, rejected.reason = "rejected", data.reason
            case TaskAwarded():
                if view.assigned_to and (previous := by_agent.get(view.assigned_to)):
                    previous.status = "failed"
                    previous.reason = data.previous_failure
                    view.failures[view.assigned_to] = data.previous_failure or "failed"
                if (won := by_agent.get(data.agent_id)) is not None:
                    won.status, won.reason = "accepted", None
                view.status, view.assigned_to, view.round = "awarded", data.agent_id, data.round
                view.awarded_at, view.progress, view.progress_note = at, None, None
                view.winning_bid = WinningBid(
                    agent_id=data.agent_id,
                    estimated_time_s=data.proposal.estimated_time_s,
                    cost=data.proposal.cost,
                    confidence=data.proposal.confidence,
                    score=data.score,
                )
            case TaskProgress():
                view.progress, view.progress_note = data.percent, data.note or None
            case TaskCompleted():
                view.status, view.result, view.finished_at = "completed", data.result, at
                view.progress = 100.0
            case TaskFailed():
                view.status, view.failure_reason, view.finished_at = "failed", data.reason, at
                view.refusals.update(data.refusals)
                view.failures.update(data.failures)
                for agent_id, why in data.failures.items():
                    if (failed := by_agent.get(agent_id)) is not None:
                        failed.status, failed.reason = "failed", why
            case TaskCancelled():
                view.status, view.failure_reason, view.finished_at = "cancelled", data.reason, at

    def _fold_run(self, event: Event) -> None:
        payload_type = RUN_EVENT_TYPES.get(event.type)
        if payload_type is None:
            return
        data = msgspec.convert(event.data, payload_type)
        at = iso(event.time)
        if isinstance(data, RunStarted):
            self._runs[data.run_id] = RunView(
                run_id=data.run_id,
                namespace=event.namespace,
                cluster=data.cluster,
                strategy=data.strategy,
                agent_ids=list(data.agent_ids),
                input=data.input,
                status="running",
                budget=msgspec.to_builtins(data.budget) if data.budget else None,
                created_at=at,
                updated_at=at,
                version=event.version,
            )
            return
        view = self._runs.get(event.subject)
        if view is None:
            return
        view.version, view.updated_at = event.version, at
        match data:
            case RunRequested():
                view.results.append(
                    AgentRunResult(
                        agent_id=data.agent_id,
                        stage=data.stage,
                        status="requested",
                        input=data.input,
                    )
                )
            case RunAgentResult():
                for part in view.results:
                    if part.agent_id == data.agent_id and part.stage == data.stage:
                        part.status = "completed" if data.ok else "failed"
                        part.output, part.error = data.output, data.error
            case RunFinishedEvent():
                view.status = "completed" if event.type == "grouprun.completed" else "failed"
                view.result, view.winner, view.error = data.result, data.winner, data.error
                view.cancelled, view.finished_at = list(data.cancelled), at
                for part in view.results:
                    if part.status == "requested" and part.agent_id in data.cancelled:
                        part.status = "cancelled"


def _new_task(task_id: str, event: Event, spec: TaskSpec) -> TaskView:
    at = iso(event.time)
    return TaskView(
        task_id=task_id,
        namespace=event.namespace,
        name=spec.name,
        description=spec.description,
        data=spec.data,
        participants=list(spec.participants),
        requirements=msgspec.to_builtins(spec.requirements) if spec.requirements else None,
        timeout_seconds=spec.timeout_seconds,
        status="created",
        created_at=at,
        updated_at=at,
        version=event.version,
    )
