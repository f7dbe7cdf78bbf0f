"""The runtime's bounded context: sessions, chat turns, executions, budgets, instances.

Streams:

- ``session-<id>``: a conversation; its settings, files and turns (``turn.*``, ``tool.*``).
- ``execution-<id>``: one triggered run of an agent (``execution.*``, ``tool.*``).
- ``budget-<agent id>``: what an agent has spent (``budget.*``).
- ``instance-<agent id>``: warm instances of an agent coming and going (``instance.*``).

A *run* is a chat turn or an execution. Each of its steps is recorded before the run moves
on: a model answer as ``turn.step_recorded``/``execution.step_recorded`` (kind ``model``), a
tool call as ``tool.called`` then ``tool.completed`` or ``tool.failed``. Replaying a run's
recorded steps rebuilds it exactly, so a crashed execution resumes without calling a model or
a tool again for a step that has a result.

Token deltas are not events: they go to ``parley.stream.turn.<turn id>`` as
:class:`TurnDelta` (kept a few minutes for resume), and the finished answer is one event.
"""

from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.errors import ErrorBody
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.ids import IdStream
from parley.contracts.registry import ModelParams
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec

__all__ = [
    "VIEWED",
    "EVENT_TYPES",
    "SERVICE",
    "CancelExecution",
    "CancelTurn",
    "Chat",
    "ChatResult",
    "ConcurrencyPolicy",
    "CreateSession",
    "DeleteFile",
    "DeleteSession",
    "DeleteSessions",
    "ExecutionInput",
    "ExecutionOptions",
    "RuntimeReply",
    "SessionPatch",
    "SessionSettings",
    "SetSessionTools",
    "TriggerExecution",
    "TurnDelta",
    "UpdateSession",
    "UploadFile",
    "Usage",
    "budget_stream",
    "execution_stream",
    "instance_stream",
    "session_stream",
    "spend_stream",
    "turn_subject",
]

SERVICE = "runtime"
VIEWED = ("agent", "deployment", "session", "execution")
"""The stream categories the runtime's view of agents reads: a command's ``min_position`` is
the newest event of these the caller saw (the view waits for nothing else)."""

Id = Annotated[str, Meta(pattern=ID_PATTERN)]
Namespace = Annotated[str, Meta(pattern=NAMESPACE_PATTERN)]
ConcurrencyPolicy = Literal["reject", "enqueue", "interrupt"]
"""What a message does when its session already has a turn running: `reject` (409
`SESSION_BUSY`), `enqueue` (wait for it, bounded), `interrupt` (cancel it, then run)."""
RunOutcome = Literal["completed", "failed", "cancelled", "interrupted", "input_required"]


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Tokens and cost of a call or a run."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False
    """True when a cut stream's usage was estimated from the text received."""
    price_unknown: bool = False
    """True when a model of the call has no price in the models catalogue: ``cost_usd``
    leaves its calls out (counted as 0 by cost budgets and spend quotas; tokens still count)."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class _SessionModel(Strict):
    """The fields settings and patches of a session start with: its model and its prompt."""

    provider: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    model: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    persona: Annotated[str, Meta(max_length=128)] | None = None
    system_prompt: Annotated[str, Meta(max_length=100_000)] | None = None
    params: ModelParams | None = None


class SessionSettings(_SessionModel):
    """How a session's turns run. For an agent's session, unset fields follow the agent."""

    tools: Annotated[list[ToolSpec], Meta(max_length=64)] | None = None
    strategy: StrategySpec | None = None
    concurrency: ConcurrencyPolicy = "reject"
    """Default policy for a message that arrives while a turn runs."""


class SessionPatch(_SessionModel):
    """Fields to change; absent fields stay. All or nothing: one bad field changes none."""

    strategy: StrategySpec | None = None
    concurrency: ConcurrencyPolicy | None = None


class ExecutionOptions(Strict):
    """How a triggered execution runs."""

    timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] = 300
    """Whole-run deadline; past it the execution fails with `TIMEOUT`."""
    max_attempts: Annotated[int, Meta(ge=1, le=10)] = 3
    """Attempts when a run fails for a retryable reason (provider errors)."""
    retry_backoff_seconds: Annotated[float, Meta(ge=0, le=600)] = 2
    """Wait before a retry, doubled each attempt."""


# --- commands (parley.cmd.runtime.<verb>) ------------------------------------------------


class _Command(Strict, kw_only=True):
    namespace: Namespace = "default"
    request_id: str | None = None
    """The edge's request id, kept as the events' correlation id."""
    traceparent: str | None = None


class _SessionCommand(_Command, kw_only=True):
    """A command on one session."""

    session_id: Id


class _ExecutionCommand(_Command, kw_only=True):
    """A command on one execution of an agent."""

    agent_id: Id
    execution_id: Id


class CreateSession(_Command, kw_only=True):
    """Open a conversation, for an agent or ad hoc with its own settings."""

    session_id: Id | None = None
    agent_id: Id | None = None
    settings: SessionSettings = msgspec.field(default_factory=SessionSettings)
    title: Annotated[str, Meta(max_length=256)] | None = None
    min_position: int = 0
    """The edge's view position; the runtime waits until its own view has it."""


class UpdateSession(_SessionCommand, kw_only=True):
    """Change a session's settings; the reply reports changed, skipped and failed fields."""

    patch: SessionPatch
    expected_version: int | None = None


class SetSessionTools(_SessionCommand, kw_only=True):
    """Replace a session's tools."""

    tools: Annotated[list[ToolSpec], Meta(max_length=64)]
    expected_version: int | None = None


class DeleteSession(_SessionCommand, kw_only=True):
    """Delete one session (its events stay; it leaves every view)."""


class DeleteSessions(_Command, kw_only=True):
    """Delete several sessions at once (the edge lists them from its view)."""

    session_ids: Annotated[list[Id], Meta(max_length=10_000)]


class Chat(_Command, kw_only=True):
    """One user message → one turn of the model (plus tool rounds)."""

    message: Annotated[str, Meta(min_length=1, max_length=200_000)]
    agent_id: Id | None = None
    session_id: Id | None = None
    """The conversation; a new one is opened for an agent when absent."""
    turn_id: Id
    """Chosen by the caller, so it can subscribe to the turn's deltas first."""
    context: dict[str, Any] = {}
    """Extra facts for this turn, given to the model as data."""
    files: Annotated[list[Annotated[str, Meta(max_length=256)]], Meta(max_length=16)] = []
    """Session files (ids or names) whose text is added to the message."""
    policy: ConcurrencyPolicy | None = None
    """Overrides the session's concurrency policy for this message."""
    stream: bool = False
    """Reply as soon as the turn starts; the answer comes as deltas."""
    min_position: int = 0
    hops: Annotated[int, Meta(ge=0)] = 0
    """For a turn answering an agent's message: that message's hop count (the messages the
    turn's agent sends carry one more)."""


class CancelTurn(_Command, kw_only=True):
    """Cancel the running turn of a session (or of an agent's sessions)."""

    session_id: Id | None = None
    agent_id: Id | None = None
    turn_id: Id | None = None


class UploadFile(_SessionCommand, kw_only=True):
    """Attach a file to a session."""

    name: Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")]
    content_type: Annotated[str, Meta(max_length=128)]
    data: bytes


class DeleteFile(_SessionCommand, kw_only=True):
    """Remove a session file."""

    file_id: Id


class TriggerExecution(_Command, kw_only=True):
    """Queue a durable execution of an agent."""

    agent_id: Id
    execution_id: Id | None = None
    input_data: dict[str, Any] = {}
    options: ExecutionOptions = msgspec.field(default_factory=ExecutionOptions)
    trigger: Literal["webhook", "periodic", "manual"] = "webhook"
    min_position: int = 0


class ExecutionInput(_ExecutionCommand, kw_only=True):
    """Answer an execution waiting in `input_required`."""

    approved: bool = True
    response: Annotated[str, Meta(max_length=100_000)] | None = None
    """Given to the model as the tool's result instead of running the tool."""


class CancelExecution(_ExecutionCommand, kw_only=True):
    """Cancel a queued, running or waiting execution."""


class ChatResult(msgspec.Struct, kw_only=True):
    """A finished turn, as the sync chat answers."""

    session_id: str
    turn_id: str
    response: str
    outcome: RunOutcome
    tokens_used: int
    usage: Usage
    response_time_ms: float
    tool_calls: list[dict[str, Any]] = []


class RuntimeReply(Reply, kw_only=True):
    """Reply to every runtime command."""

    session_id: str | None = None
    turn_id: str | None = None
    execution_id: str | None = None
    file_id: str | None = None
    chat: ChatResult | None = None
    report: dict[str, Any] | None = None
    """For settings changes: `changed`, `skipped`, `failed`."""


# --- token stream (core NATS, not stored as events) -------------------------------------


class TurnDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One frame of a turn's live stream; ``seq`` counts from 1 per turn."""

    seq: int
    type: Literal["start", "token", "plan", "tool_call", "tool_result", "end", "error"]
    turn_id: str
    data: dict[str, Any] = {}


def turn_subject(turn_id: str) -> str:
    """Core NATS subject of a turn's deltas."""
    return f"parley.stream.turn.{turn_id}"


# --- events ------------------------------------------------------------------------------


class _SessionEvent(msgspec.Struct, kw_only=True):
    """The field every event on a session's stream but a turn's starts with: which session."""

    session_id: str


class SessionCreated(_SessionEvent, kw_only=True):
    """A conversation was opened."""

    agent_id: str | None
    settings: SessionSettings
    title: str | None = None


class SessionSettingsChanged(_SessionEvent, kw_only=True):
    """A session's settings changed."""

    settings: SessionSettings
    changed: list[str]


class SessionDeleted(_SessionEvent, kw_only=True):
    """A session was deleted."""


class _FileEvent(_SessionEvent, kw_only=True):
    """The fields every ``file.*`` event starts with: which file of which session."""

    file_id: str


class FileUploaded(_FileEvent, kw_only=True):
    """A file was attached to a session (its bytes are in the object store)."""

    name: str
    content_type: str
    size: int
    sha256: str


class FileDeleted(_FileEvent, kw_only=True):
    """A session file was removed."""


class RunVersion(msgspec.Struct, kw_only=True):
    """Which definition of its agent a run used (all None without an agent's deployment
    record: a run from before versions were recorded, or of a session with no agent)."""

    agent_version: int | None = None
    """The agent's numbered version (``/agents/{id}/versions/{n}``) the run used; during a
    deployment the new definition is the number it becomes when the deployment completes."""
    version_label: str | None = None
    """The label of the definition used: the deployment's ``version_label`` for its new one
    (and once it completed), None for a definition no deployment labelled."""
    deployment_id: str | None = None
    """The deployment whose new definition the run used while it rolled out (None on the
    agent's current definition)."""


class TurnStarted(RunVersion, kw_only=True):
    """A user message started a turn."""

    turn_id: str
    session_id: str
    agent_id: str | None
    message: str
    context: dict[str, Any] = {}
    files: list[str] = []
    opens: SessionSettings | None = None
    """Set on the first event of a conversation that a chat message opens: this start
    opens it (with these settings; no ``session.created`` comes before it)."""


class StepRecorded(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A run's step result: a model answer (`model`), a plan (`plan`) or a plan step."""

    run_id: str
    step: int
    kind: Literal["model", "plan", "plan_step"]
    text: str = ""
    tool_calls: list[dict[str, Any]] = []
    usage: Usage | None = None
    stop_reason: str | None = None
    provider: str | None = None
    model: str | None = None
    plan: list[str] = []
    index: int | None = None
    duration_ms: float = 0.0


class _ToolCallEvent(msgspec.Struct, kw_only=True):
    """The fields every ``tool.*`` event starts with: which call of which run."""

    run_id: str
    step: int
    call_id: str
    name: str


class ToolCalled(_ToolCallEvent, kw_only=True):
    """A run is about to call a tool."""

    arguments: dict[str, Any]


class ToolCompleted(_ToolCallEvent, kw_only=True):
    """A tool call returned."""

    content: str
    data: Any = None
    duration_ms: float


class ToolFailed(_ToolCallEvent, kw_only=True):
    """A tool call failed; the model is told why."""

    code: str
    message: str
    duration_ms: float


class RunFinished(RunVersion, kw_only=True, omit_defaults=True):
    """A run ended: `turn.completed`/`failed`/`cancelled`/`interrupted`, `execution.*`."""

    run_id: str
    outcome: RunOutcome
    output: str = ""
    usage: Usage = msgspec.field(default_factory=Usage)
    response_time_ms: float = 0.0
    steps: int = 0
    error: ErrorBody | None = None
    agent_id: str | None = None
    session_id: str | None = None
    last_step: StepRecorded | None = None
    """The run's last model answer, when it is recorded here rather than as its own
    ``*.step_recorded``: an answer that called no tool is recorded with what follows it, and
    for most runs that is their end (one append fewer per turn)."""


class _ExecutionEvent(msgspec.Struct, kw_only=True):
    """The fields every ``execution.*`` event of one agent's execution starts with."""

    execution_id: str
    agent_id: str


class ExecutionRequested(_ExecutionEvent, kw_only=True):
    """An execution was queued."""

    trigger: str
    input_data: dict[str, Any]
    options: ExecutionOptions


class ExecutionStarted(RunVersion, kw_only=True):
    """A runtime took the execution (again, after a crash: ``attempt`` > 1), on the agent's
    definition its version fields name."""

    execution_id: str
    agent_id: str
    attempt: int
    worker: str


class ExecutionInputRequired(_ExecutionEvent, kw_only=True):
    """The run stopped before a tool that needs approval."""

    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any]


class ExecutionInputReceived(_ExecutionEvent, kw_only=True):
    """Someone answered the approval request."""

    call_id: str
    approved: bool
    response: str | None = None


class _BudgetEvent(msgspec.Struct, kw_only=True):
    """The fields every ``budget.*`` event starts with: whose budget, which period."""

    agent_id: str
    period: str


class BudgetConsumed(_BudgetEvent, kw_only=True):
    """A model call's usage was settled against the agent's budget."""

    usage: Usage
    total_tokens: int
    total_cost_usd: float


class BudgetThreshold(_BudgetEvent, kw_only=True):
    """`budget.warning` (80 %) or `budget.critical` (100 %) was crossed."""

    kind: Literal["tokens", "cost"]
    used: float
    limit: float
    ratio: float


class SpendRecorded(msgspec.Struct, kw_only=True):
    """A model call's cost was added to its namespace's spend of the day (the daily quota)."""

    namespace: str
    day: str
    """The UTC day, ``2026-11-27``."""
    agent_id: str | None
    cost_usd: float
    total_cost_usd: float
    """The namespace's spend that day, this call included."""


class InstanceChanged(msgspec.Struct, kw_only=True):
    """`instance.started` (cold start) or `instance.stopped` (idle, scale to zero)."""

    agent_id: str
    worker: str
    reason: str
    cold_start_ms: float = 0.0


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "session.created": SessionCreated,
    "session.settings_changed": SessionSettingsChanged,
    "session.deleted": SessionDeleted,
    "file.uploaded": FileUploaded,
    "file.deleted": FileDeleted,
    "turn.started": TurnStarted,
    "turn.step_recorded": StepRecorded,
    "turn.completed": RunFinished,
    "turn.failed": RunFinished,
    "turn.cancelled": RunFinished,
    "turn.interrupted": RunFinished,
    "tool.called": ToolCalled,
    "tool.completed": ToolCompleted,
    "tool.failed": ToolFailed,
    "execution.requested": ExecutionRequested,
    "execution.started": ExecutionStarted,
    "execution.step_recorded": StepRecorded,
    "execution.input_required": ExecutionInputRequired,
    "execution.input_received": ExecutionInputReceived,
    "execution.completed": RunFinished,
    "execution.failed": RunFinished,
    "execution.cancelled": RunFinished,
    "budget.consumed": BudgetConsumed,
    "budget.warning": BudgetThreshold,
    "budget.critical": BudgetThreshold,
    "spend.recorded": SpendRecorded,
    "instance.started": InstanceChanged,
    "instance.stopped": InstanceChanged,
}
"""Event type name → payload type, for every event the runtime emits."""


session_stream = IdStream("session")
"""Stream of a session's events."""


execution_stream = IdStream("execution")
"""Stream of an execution's events."""


budget_stream = IdStream("budget")
"""Stream of an agent's budget settlements."""


def spend_stream(namespace: str, day: str) -> str:
    """Stream of a namespace's model spend on one UTC day (``day`` as ``yyyymmdd``)."""
    return f"spend-{namespace}-{day}"


instance_stream = IdStream("instance")
"""Stream of an agent's warm instances coming and going."""
