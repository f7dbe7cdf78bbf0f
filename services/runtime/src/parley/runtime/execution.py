"""An execution, folded from its stream ``execution-<id>``: status, attempts, pending input.

Statuses: ``queued`` (requested, or answered after ``input_required``, and waiting for a
worker), ``running`` (a worker appended ``execution.started``; it may since have died),
``input_required`` (parked until a person answers), and the final ``completed``, ``failed``,
``cancelled``.

Pure: ``evolve(state, event) -> state`` does no I/O.
"""

from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.runtime import ExecutionInputRequired, ExecutionOptions

__all__ = ["FINAL", "Execution", "ExecutionStatus", "evolve"]

ExecutionStatus = Literal["queued", "running", "input_required", "completed", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""Statuses an execution never leaves."""
_FINAL_EVENTS: dict[str, ExecutionStatus] = {
    "execution.completed": "completed",
    "execution.failed": "failed",
    "execution.cancelled": "cancelled",
}


@dataclass(frozen=True)
class Execution:
    """What a worker, an answer or a cancel needs to know about one execution."""

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
    version: int = 0
    position: int = 0
    requested_position: int = 0
    correlation_id: str | None = None
    traceparent: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the execution reached a final status."""
        return self.status in FINAL

    @property
    def runnable(self) -> bool:
        """Whether a worker should (re)start it: queued, or running on a worker that died."""
        return self.status in ("queued", "running")


def evolve(state: Execution | None, event: Event) -> Execution:
    """Fold one execution event; run steps (``tool.*``, ``*.step_recorded``) only bump it."""
    data, kind = event.data, event.type
    if state is None:
        if kind != "execution.requested":
            raise ValueError(f"execution stream starts with {kind}, not execution.requested")
        return Execution(
            id=data["execution_id"],
            namespace=event.namespace,
            agent_id=data["agent_id"],
            trigger=data.get("trigger", "webhook"),
            input_data=dict(data.get("input_data") or {}),
            options=msgspec.convert(data.get("options") or {}, ExecutionOptions),
            version=event.version,
            position=event.position,
            requested_position=event.position,
            correlation_id=event.correlationid,
            traceparent=event.traceparent,
        )
    state = replace(state, version=event.version, position=event.position)
    if state.finished:  # nothing moves a finished execution (a late writer lost its race)
        return state
    if kind == "execution.started":
        return replace(
            state,
            status="running",
            attempts=state.attempts + 1,
            leg_attempts=state.leg_attempts + 1,
            worker=data.get("worker"),
        )
    if kind == "execution.input_required":
        pending = msgspec.convert(data, ExecutionInputRequired)
        return replace(state, status="input_required", pending=pending)
    if kind == "execution.input_received":
        return replace(state, status="queued", pending=None, leg_attempts=0)
    if (final := _FINAL_EVENTS.get(kind)) is not None:
        return replace(state, status=final, pending=None)
    return state
