"""What the API shows of the runtime: sessions, executions, logs and metrics of agents.

These are read shapes, and the functions below map the states of
:mod:`parley.aggregates.session` and :mod:`parley.aggregates.execution` (folded by
:mod:`parley.edge.projections.runtime`) to them; errors, usage and tool payloads are kept as
the events carry them.
"""

from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Literal
from typing import TypeVar

import msgspec

from parley.aggregates.execution import Execution
from parley.aggregates.execution import StepRecord
from parley.aggregates.session import Entry
from parley.aggregates.session import EntryRecord
from parley.aggregates.session import Session
from parley.edge.views import as_view
from parley.edge.views import iso
from parley.edge.views import iso_or_none

__all__ = [
    "ActiveTurnView",
    "AgentMetrics",
    "BudgetView",
    "ExecutionStatus",
    "ExecutionStep",
    "ExecutionView",
    "FileView",
    "HistoryEntry",
    "InstancesView",
    "LogEntry",
    "LogLevel",
    "PendingInput",
    "SessionDetail",
    "SessionView",
    "TokenTotals",
    "execution_view",
    "history_entry",
    "session_view",
]

ExecutionStatus = Literal["queued", "running", "input_required", "completed", "failed", "cancelled"]
LogLevel = Literal["info", "warning", "error"]


class FileView(msgspec.Struct, kw_only=True):
    """A session file's metadata (its bytes are at `.../files/{id}/content`)."""

    id: str
    """File id."""
    name: str
    """File name as uploaded."""
    content_type: str
    """Media type."""
    size: int
    """Bytes."""
    sha256: str
    """Hex SHA-256 of the bytes."""
    uploaded_at: str
    """UTC ISO-8601."""


class ActiveTurnView(msgspec.Struct, kw_only=True):
    """The turn running in a session."""

    turn_id: str
    started_at: str


class HistoryEntry(EntryRecord[str], frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation: `user`, `assistant` (maybe with tool calls) or `tool`."""

    time: str  # again, for the OpenAPI schema: it does not read the base's type parameter


class SessionView(msgspec.Struct, kw_only=True):
    """A conversation, without its history (lists)."""

    id: str
    namespace: str
    agent_id: str | None
    """The agent it talks to; null for an ad-hoc session."""
    title: str | None
    settings: dict[str, Any]
    """Provider, model, persona, system prompt, params, tools, strategy, concurrency."""
    created_at: str
    updated_at: str
    version: int
    """Stream version (the `ETag`)."""
    turn_count: int
    message_count: int
    active_turn: ActiveTurnView | None
    last_turn_at: str | None
    files: list[FileView]


class SessionDetail(SessionView, kw_only=True):
    """A conversation with its history."""

    history: list[HistoryEntry]


class ExecutionStep(StepRecord[str], frozen=True, kw_only=True, omit_defaults=True):
    """A recorded step of an execution: a model answer, a plan, or a tool call's progress."""

    type: Literal["model", "plan", "plan_step", "tool_called", "tool_completed", "tool_failed"]
    time: str  # again, for the OpenAPI schema: it does not read the base's type parameter


class PendingInput(msgspec.Struct, kw_only=True):
    """What an execution in `input_required` waits for."""

    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any]
    since: str


class ExecutionView(msgspec.Struct, kw_only=True):
    """One triggered run of an agent."""

    id: str
    agent_id: str
    namespace: str
    status: ExecutionStatus
    trigger: str
    input_data: dict[str, Any]
    options: dict[str, Any]
    """`timeout_seconds`, `max_attempts`, `retry_backoff_seconds`."""
    attempts: int
    steps: list[ExecutionStep]
    output: str | None
    error: dict[str, Any] | None
    usage: dict[str, Any]
    response_time_ms: float | None
    pending_input: PendingInput | None
    created_at: str
    started_at: str | None
    updated_at: str
    finished_at: str | None


class LogEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of an agent's log, derived from an event."""

    time: str
    level: LogLevel
    message: str
    event_type: str
    position: int
    execution_id: str | None = None
    session_id: str | None = None
    turn_id: str | None = None
    agent_version: int | None = None
    """The agent's version the line's run used (see ``/agents/{id}/versions``), if known."""


class TokenTotals(msgspec.Struct, kw_only=True):
    """Tokens of finished runs."""

    input: int = 0
    output: int = 0
    total: int = 0


class BudgetView(msgspec.Struct, kw_only=True):
    """An agent's spend as its budget counts it (the latest settlement's period)."""

    period: str | None = None
    total_tokens: int = 0
    total_cost_usd: float = 0.0
    last_threshold: dict[str, Any] | None = None
    """The latest `budget.warning`/`budget.critical`: kind, used, limit, ratio, level."""


class InstancesView(msgspec.Struct, kw_only=True):
    """An agent's warm instances."""

    count: int = 0
    workers: list[str] = msgspec.field(default_factory=list)
    cold_starts: int = 0
    last_cold_start_ms: float | None = None


class AgentMetrics(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What an agent's runs added up to (``agent_version`` only when filtered by one)."""

    agent_id: str
    agent_version: int | None = None
    """The version the run figures are of, when filtered by one (agent-wide figures —
    conversations, budget, instances — stay the agent's)."""
    total_requests: int
    """Finished turns plus finished executions."""
    turns: int
    executions: int
    succeeded: int
    failed: int
    success_rate: float | None
    """`succeeded / total_requests`; null before the first request."""
    average_response_time_ms: float | None
    active_conversations: int
    """Sessions with a turn in the last 15 minutes."""
    sessions: int
    tokens: TokenTotals
    cost_usd: float
    budget: BudgetView
    instances: InstancesView


SessionT = TypeVar("SessionT", bound="SessionView")
T0 = datetime.fromtimestamp(0, UTC)
"""Stands in for a time a state lacks (never, for states folded from events)."""


def history_entry(entry: Entry) -> HistoryEntry:
    """A message of a session as the API shows it."""
    return as_view(HistoryEntry, entry, time=iso(entry.time))


def session_view(view_type: type[SessionT], s: Session, **fields: Any) -> SessionT:
    """A session as the API shows it (``fields``: the history of a :class:`SessionDetail`)."""
    created = s.created_at or T0
    active = s.active
    return as_view(
        view_type,
        s,
        settings=msgspec.to_builtins(s.settings),
        created_at=iso(created),
        updated_at=iso(s.updated_at or created),
        message_count=s.entry_count,
        active_turn=ActiveTurnView(turn_id=active.turn_id, started_at=iso(active.started_at))
        if active is not None
        else None,
        last_turn_at=iso_or_none(s.last_turn_at),
        files=[
            as_view(
                FileView, f, id=f.file_id, uploaded_at=iso(s.uploaded_at.get(f.file_id, created))
            )
            for f in s.files.values()
        ],
        **fields,
    )


def execution_view(e: Execution) -> ExecutionView:
    """An execution as the API shows it."""
    created = e.created_at or T0
    pending = e.pending
    return as_view(
        ExecutionView,
        e,
        options=msgspec.to_builtins(e.options),
        steps=[as_view(ExecutionStep, s, time=iso(s.time)) for s in e.steps],
        pending_input=as_view(PendingInput, pending, since=iso(e.pending_since or created))
        if pending is not None
        else None,
        created_at=iso(created),
        started_at=iso_or_none(e.started_at),
        updated_at=iso(e.updated_at or created),
        finished_at=iso_or_none(e.finished_at),
    )
