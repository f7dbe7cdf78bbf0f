"""An execution, folded from its stream ``execution-<id>``, and its decider.

Statuses: ``queued`` (requested, or answered after ``input_required``, and waiting for a
worker), ``running`` (a worker appended ``execution.started``; it may since have died),
``input_required`` (parked until a person answers), and the final ``completed``, ``failed``,
``cancelled``. Nothing moves a finished execution: a late writer lost its race.

The runtime decides with :func:`decide` (its workers' retry policy is
:func:`retry_delay`); the edge's runtime projection folds the same :func:`evolve`. Steps and
outcomes are kept as the events carry them, for the views.
"""

from datetime import datetime
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar

import msgspec

from parley.aggregates._chain import Chain
from parley.aggregates._chain import append
from parley.aggregates._chain import items
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.decision import Moved
from parley.aggregates.fold import born
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.runtime import EVENT_TYPES
from parley.contracts.runtime import CancelExecution
from parley.contracts.runtime import ExecutionInput
from parley.contracts.runtime import ExecutionInputReceived
from parley.contracts.runtime import ExecutionInputRequired
from parley.contracts.runtime import ExecutionOptions
from parley.contracts.runtime import ExecutionRequested
from parley.contracts.runtime import ExecutionStarted
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import RunVersion
from parley.contracts.runtime import execution_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "FINAL",
    "Begin",
    "Execution",
    "ExecutionCommand",
    "ExecutionStatus",
    "Fail",
    "Finish",
    "Moved",
    "Record",
    "Request",
    "Step",
    "StepRecord",
    "StopWorker",
    "Superseded",
    "decide",
    "evolve",
    "retry_delay",
    "superseded",
]

CATEGORY = execution_stream.category
"""The stream category this aggregate folds (``execution-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "execution", "tool")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

ExecutionStatus = Literal["queued", "running", "input_required", "completed", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""Statuses an execution never leaves."""
_FINAL_EVENTS: dict[str, ExecutionStatus] = {
    "execution.completed": "completed",
    "execution.failed": "failed",
    "execution.cancelled": "cancelled",
}


TimeT = TypeVar("TimeT")


class StepRecord(msgspec.Struct, Generic[TimeT], frozen=True, kw_only=True):
    """A recorded step: a model answer, a plan, or a tool call's progress; its ``time`` a
    datetime in :class:`Step`, text in the API's view of it."""

    step: int
    type: str
    """``model``, ``plan``, ``plan_step``, ``tool_called``, ``tool_completed``, ``tool_failed``."""
    time: TimeT
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    plan: list[str] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: dict[str, Any] | None = None
    content: str | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    duration_ms: float | None = None


class Step(StepRecord[datetime], frozen=True, kw_only=True):
    """A recorded step of an execution, as the aggregate keeps it."""


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker, an answer, a cancel or a view needs to know about one execution."""

    id: str
    namespace: str
    agent_id: str
    trigger: str
    input_data: dict[str, Any]
    options: ExecutionOptions
    status: ExecutionStatus = "queued"
    attempts: int = 0
    """``execution.started`` events so far (the next start is attempt ``attempts + 1``)."""
    leg_attempts: int = 0
    """Starts since the last request or answer: what ``options.max_attempts`` bounds, so a
    run that waits for several approvals is not out of attempts."""
    worker: str | None = None
    """The worker of the last start."""
    pending: ExecutionInputRequired | None = None
    """The approval request an ``input_required`` execution waits on."""
    pending_since: datetime | None = None
    trail: Chain[Step] | None = None
    """The recorded steps, newest last (see :attr:`steps`)."""
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] = {}
    response_time_ms: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    version: int = 0
    position: int = 0
    requested_position: int = 0
    correlation_id: str | None = None
    traceparent: str | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        """The recorded steps, oldest first."""
        return items(self.trail)

    @property
    def finished(self) -> bool:
        """Whether the execution reached a final status."""
        return self.status in FINAL

    @property
    def runnable(self) -> bool:
        """Whether a worker should (re)start it: queued, or running on a worker that died."""
        return self.status in ("queued", "running")

    def visible_to(self, agent_id: str, namespace: str) -> bool:
        """Whether the execution belongs to ``agent_id`` in ``namespace``."""
        return self.agent_id == agent_id and self.namespace == namespace


def evolve(state: Execution | None, event: Event) -> Execution:
    """Fold one execution event; run steps (``tool.*``, ``*.step_recorded``) are kept.

    Raises:
        ValueError: When the stream does not start with ``execution.requested``, or a
            payload does not match its type.
    """
    data, kind, at = event.data, event.type, event.time
    if state is None:
        if kind != "execution.requested":
            raise ValueError(f"execution stream starts with {kind}, not execution.requested")
        return Execution(
            id=data["execution_id"],
            agent_id=data["agent_id"],
            trigger=data.get("trigger", "webhook"),
            input_data=dict(data.get("input_data") or {}),
            options=msgspec.convert(data.get("options") or {}, ExecutionOptions),
            updated_at=at,
            position=event.position,
            requested_position=event.position,
            correlation_id=event.correlationid,
            traceparent=event.traceparent,
            **born(event),
        )
    if state.finished:  # nothing moves a finished execution (a late writer lost its race)
        return msgspec.structs.replace(state, version=event.version, position=event.position)
    state = msgspec.structs.replace(
        state, version=event.version, position=event.position, updated_at=at
    )
    if kind == "execution.started":
        return msgspec.structs.replace(
            state,
            status="running",
            attempts=state.attempts + 1,
            leg_attempts=state.leg_attempts + 1,
            worker=data.get("worker"),
            started_at=state.started_at or at,
        )
    if kind == "execution.step_recorded":
        return msgspec.structs.replace(state, trail=append(state.trail, _step(data, at)))
    if kind.startswith("tool."):
        step = Step(
            step=int(data.get("step", 0)),
            type=kind.replace(".", "_"),
            time=at,
            call_id=data.get("call_id"),
            name=data.get("name"),
            arguments=data.get("arguments"),
            content=data.get("content"),
            error={"code": data.get("code"), "message": data.get("message")}
            if kind == "tool.failed"
            else None,
            duration_ms=data.get("duration_ms"),
        )
        return msgspec.structs.replace(state, trail=append(state.trail, step))
    if kind == "execution.input_required":
        pending = msgspec.convert(data, ExecutionInputRequired)
        return msgspec.structs.replace(
            state, status="input_required", pending=pending, pending_since=at
        )
    if kind == "execution.input_received":
        return msgspec.structs.replace(
            state, status="queued", pending=None, pending_since=None, leg_attempts=0
        )
    if (final := _FINAL_EVENTS.get(kind)) is not None:
        last = data.get("last_step")  # its last answer, recorded with its end
        return msgspec.structs.replace(
            state,
            trail=append(state.trail, _step(last, at)) if last else state.trail,
            status=final,
            pending=None,
            pending_since=None,
            output=data.get("output", ""),
            error=data.get("error"),
            usage=dict(data.get("usage") or {}),
            response_time_ms=data.get("response_time_ms"),
            finished_at=at,
        )
    return state


def _step(data: dict[str, Any], at: datetime) -> Step:
    """A recorded step (a ``StepRecorded``'s fields) as the trail keeps it."""
    return Step(
        step=int(data.get("step", 0)),
        type=data.get("kind", "model"),
        time=at,
        text=data.get("text") or None,
        tool_calls=data.get("tool_calls") or None,
        plan=data.get("plan") or None,
        usage=data.get("usage"),
        duration_ms=data.get("duration_ms"),
    )


def superseded(state: Execution | None, attempt: int) -> bool:
    """Whether attempt ``attempt`` no longer owns the execution (cancelled, finished,
    parked, or taken over by a later attempt)."""
    return state is None or state.status != "running" or state.attempts != attempt


def retry_delay(state: Execution, retryable: bool) -> float | None:
    """Seconds before the next attempt after a failed one, or None when it is final.

    ``state`` is the execution as the failed attempt started it (its start counted).
    """
    options = state.options
    if retryable and state.leg_attempts < options.max_attempts:
        return float(options.retry_backoff_seconds * 2 ** (state.leg_attempts - 1))
    return None


# --- the decider -------------------------------------------------------------------------


class Superseded(ParleyError):
    """The attempt no longer owns the execution; it must stop without writing."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"execution {execution_id!r} moved on without this attempt",
        )


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """Queue an execution (a known id of the same agent and namespace is idempotent)."""

    namespace: str
    requested: ExecutionRequested


class Begin(msgspec.Struct, frozen=True, kw_only=True):
    """A worker starts the next attempt of the execution it saw at ``seen_version``."""

    worker: str
    seen_version: int
    version: RunVersion = msgspec.field(default_factory=RunVersion)
    """The agent's definition the attempt runs on (recorded on ``execution.started``)."""


class _OfAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's write for its ``attempt``: only the attempt that owns the execution writes."""

    attempt: int


class Record(_OfAttempt, frozen=True, kw_only=True):
    """Record one step of ``attempt`` (refused with :class:`Superseded` when not its own)."""

    type: str
    payload: msgspec.Struct


class Finish(_OfAttempt, frozen=True, kw_only=True):
    """Record how ``attempt`` ended; nothing when it no longer owns the execution."""

    finished: RunFinished


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    """Fail an execution that could not run, unless a later attempt took it meanwhile."""

    attempts_seen: int
    code: ErrorCode
    message: str


class StopWorker(msgspec.Struct, frozen=True):
    """Effect: tell the worker running ``execution_id`` to stop at once."""

    execution_id: str


ExecutionCommand = Request | ExecutionInput | CancelExecution | Begin | Record | Finish | Fail
"""What :func:`decide` takes: an answer and a cancel are the API's own commands."""


def decide(
    state: Execution | None, command: ExecutionCommand, ctx: Context
) -> Decision[StopWorker]:
    """The events an execution command causes, and the effects to perform after.

    Raises:
        ParleyError: ``EXECUTION_NOT_FOUND``, ``INPUT_NOT_EXPECTED``,
            ``INVALID_STATE_TRANSITION``, or ``CONCURRENCY_CONFLICT`` for an id taken by
            another agent.
        Moved: A :class:`Begin` on an execution that changed since the worker saw it.
        Superseded: A :class:`Record` of an attempt that no longer owns the execution.
    """
    del ctx
    if isinstance(command, Request):
        return Decision(_request(state, command))
    if isinstance(command, ExecutionInput | CancelExecution):
        execution = _visible(state, command.execution_id, command.agent_id, command.namespace)
        if isinstance(command, ExecutionInput):
            return Decision(_answer(execution, command))
        return _cancel(execution)
    if isinstance(command, Begin):
        if state is None or state.version != command.seen_version or not state.runnable:
            raise Moved("the execution changed; look again")
        started = ExecutionStarted(
            execution_id=state.id,
            agent_id=state.agent_id,
            attempt=state.attempts + 1,
            worker=command.worker,
            **msgspec.structs.asdict(command.version),
        )
        return Decision([("execution.started", started)])
    if isinstance(command, Record):
        if superseded(state, command.attempt):
            raise Superseded(state.id if state is not None else "?")
        return Decision([(command.type, command.payload)])
    if isinstance(command, Finish):
        if superseded(state, command.attempt):
            return Decision()
        return Decision([(f"execution.{command.finished.outcome}", command.finished)])
    if state is None or not state.runnable or state.attempts > command.attempts_seen:
        return Decision()
    failed = RunFinished(
        run_id=state.id,
        outcome="failed",
        error=ErrorBody(code=command.code, message=command.message),
        agent_id=state.agent_id,
    )
    return Decision([("execution.failed", failed)])


def _request(state: Execution | None, command: Request) -> Decided:
    requested = command.requested
    if state is None:
        return [("execution.requested", requested)]
    if state.agent_id != requested.agent_id or state.namespace != command.namespace:
        raise ParleyError(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"execution id {requested.execution_id!r} is taken; choose another",
        )
    return []  # the same request again: idempotent


def _visible(
    state: Execution | None, execution_id: str, agent_id: str, namespace: str
) -> Execution:
    if state is None or not state.visible_to(agent_id, namespace):
        raise ParleyError(
            ErrorCode.EXECUTION_NOT_FOUND, f"agent {agent_id!r} has no execution {execution_id!r}"
        )
    return state


def _answer(execution: Execution, command: ExecutionInput) -> Decided:
    pending = execution.pending
    if execution.status != "input_required" or pending is None:
        raise ParleyError(
            ErrorCode.INPUT_NOT_EXPECTED,
            f"execution {execution.id!r} is {execution.status}, not waiting for input",
            {"status": execution.status},
        )
    received = ExecutionInputReceived(
        execution_id=execution.id,
        agent_id=execution.agent_id,
        call_id=pending.call_id,
        approved=command.approved,
        response=command.response,
    )
    return [("execution.input_received", received)]


def _cancel(execution: Execution) -> Decision[StopWorker]:
    if execution.finished:
        raise ParleyError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"execution {execution.id!r} is already {execution.status}",
            {"status": execution.status},
        )
    cancelled = RunFinished(run_id=execution.id, outcome="cancelled", agent_id=execution.agent_id)
    # A hint so the worker stops now rather than at its next append (which it would find
    # superseded anyway): the recorded cancel is the truth, the message is not.
    stop = [StopWorker(execution.id)] if execution.status == "running" else []
    return Decision([("execution.cancelled", cancelled)], stop)
