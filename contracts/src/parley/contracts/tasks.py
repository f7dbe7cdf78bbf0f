"""The tasks service: FIPA Contract Net rounds and cluster group runs.

A **task** (stream ``task-<id>``) is put out to tender: ``cfp`` messages (conversation id =
task id, protocol ``fipa-contract-net``, sender ``task:<id>``, ``reply-by`` = the deadline) to
its candidates; ``propose`` (content :class:`Proposal`) or ``refuse`` back; after the deadline
or once all have answered, ``accept-proposal`` to the winner and ``reject-proposal`` to the
rest; the winner answers ``inform`` (the result) or ``failure`` (re-awarded to the next best
proposal). A proposal after ``reply-by`` is rejected as late.

A **group run** (stream ``grouprun-<id>``) sends the cluster's agents ``request`` messages
(sender ``run:<id>``) by a strategy: ``parallel``, ``map-reduce``, ``pipeline``, ``race``.
"""

from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.commands import TracedCommand
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import ScopedStream
from parley.contracts.registry import Budget

__all__ = [
    "VIEWED",
    "EVENT_TYPES",
    "RUN_EVENT_TYPES",
    "SERVICE",
    "TASKS_INBOX",
    "AwardStrategy",
    "CancelTask",
    "CfpSent",
    "CreateTask",
    "DistributeTask",
    "GroupStrategy",
    "Proposal",
    "ProposalReceived",
    "Requirements",
    "RunAgentResult",
    "RunBudgetWarning",
    "RunFinishedEvent",
    "RunRequested",
    "RunStarted",
    "StartRun",
    "TaskAwarded",
    "TaskCancelled",
    "TaskCompleted",
    "TaskCreated",
    "TaskFailed",
    "TaskProgress",
    "TaskRefused",
    "TaskRejected",
    "TaskReply",
    "TaskSpec",
    "TaskStatus",
    "WinningBid",
    "run_stream",
    "task_stream",
]

SERVICE = "tasks"
VIEWED = ("agent", "session", "execution")
"""The stream categories the tasks service's directory reads (see ``runtime.VIEWED``)."""
TASKS_INBOX = "parley.inbox.tasks"
"""Work-queue subject (stream ``PARLEY_INBOX``) of every message to a ``task:``/``run:``."""

AgentId = Annotated[str, Meta(pattern=ID_PATTERN)]
Capability = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
AwardStrategy = Literal["best_bid", "lowest_cost", "fastest", "highest_confidence"]
GroupStrategy = Literal["parallel", "map-reduce", "pipeline", "race"]
TaskStatus = Literal["created", "announced", "awarded", "completed", "failed", "cancelled"]


class Requirements(Strict):
    """Who may bid: agents with every capability and at least this performance score."""

    capabilities: Annotated[list[Capability], Meta(max_length=32)] = []
    min_performance_score: Annotated[float, Meta(ge=0, le=1)] = 0.0
    """An agent's success rate over its finished turns and executions (1.0 with none)."""


class TaskSpec(Strict):
    """A piece of work to put out to tender."""

    name: Annotated[str, Meta(min_length=1, max_length=256)]
    description: Annotated[str, Meta(max_length=10_000)] = ""
    data: Any = None
    participants: Annotated[list[AgentId], Meta(max_length=1000)] = []
    """Explicit candidates; otherwise `requirements` pick them."""
    requirements: Requirements | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=86_400)] = 300
    """How long the awarded agent has to report a result."""


class Proposal(msgspec.Struct, kw_only=True):
    """The content of a `propose`: what the bidder offers."""

    estimated_time_s: Annotated[float, Meta(ge=0)]
    cost: Annotated[float, Meta(ge=0)]
    confidence: Annotated[float, Meta(ge=0, le=1)]


class CreateTask(TracedCommand, kw_only=True):
    """Record a task (status `created`)."""

    spec: TaskSpec
    task_id: AgentId | None = None
    min_position: int = 0


class DistributeTask(TracedCommand, kw_only=True):
    """Run the Contract Net for a task."""

    task_id: AgentId
    strategy: AwardStrategy = "best_bid"
    max_wait_seconds: Annotated[float, Meta(gt=0, le=600)] = 5.0
    """The cfp's `reply-by`: proposals after it are rejected as late."""
    wait: bool = False
    """Answer once the round has ended (awarded or failed) instead of at once."""
    min_position: int = 0
    """The caller's view of the agents: candidates are chosen from a directory at least this
    far along."""


class CancelTask(TracedCommand, kw_only=True):
    """Cancel a task; the contractor gets a FIPA `cancel`."""

    task_id: AgentId
    reason: Annotated[str, Meta(max_length=1024)] | None = None


class StartRun(TracedCommand, kw_only=True):
    """Run a cluster's agents on one input by a group strategy."""

    cluster: Annotated[str, Meta(min_length=1, max_length=128)]
    agent_ids: Annotated[list[AgentId], Meta(min_length=1, max_length=1000)]
    """The cluster's agents, in manifest order (the edge resolves them)."""
    input: Any
    strategy: GroupStrategy = "parallel"
    budget: Budget | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] = 120
    """The whole run; outstanding requests are then cancelled and the run fails."""
    run_id: AgentId | None = None
    min_position: int = 0


class WinningBid(msgspec.Struct, kw_only=True):
    """The proposal a task was awarded on."""

    agent_id: str
    estimated_time_s: float
    cost: float
    confidence: float
    score: float


class TaskReply(Reply, kw_only=True):
    """Reply to every tasks command."""

    task_id: str | None = None
    run_id: str | None = None
    status: str | None = None
    assigned_to: str | None = None
    """`distribute` with `wait`: the awarded agent."""
    proposals_received: int | None = None
    winning_bid: WinningBid | None = None
    reason: str | None = None
    """`distribute` with `wait`: why the round failed."""


# --- task events (task-<id>) -------------------------------------------------------------


class _TaskEvent(msgspec.Struct, kw_only=True):
    """The field every ``task.*`` event starts with: which task."""

    task_id: str


class TaskCreated(_TaskEvent, kw_only=True):
    spec: TaskSpec


class CfpSent(_TaskEvent, kw_only=True):
    candidates: list[str]
    strategy: AwardStrategy
    reply_by: datetime
    message_id: str


class _AgentTaskEvent(_TaskEvent, kw_only=True):
    """The fields every event about one agent's part in a task starts with."""

    agent_id: str


class ProposalReceived(_AgentTaskEvent, kw_only=True):
    proposal: Proposal
    message_id: str
    reply_with: str | None = None
    """The `propose`'s `reply-with`: the `in-reply-to` of the answer to it."""


class TaskRefused(_AgentTaskEvent, kw_only=True):
    reason: str


class TaskAwarded(_AgentTaskEvent, kw_only=True):
    proposal: Proposal
    score: float
    round: int = 1
    """1 for the first award; each re-award after a failure adds one."""
    message_id: str | None = None
    """Id of the `accept-proposal` sent to the agent."""
    previous_failure: str | None = None
    """On a re-award: why the previous contractor failed."""


class TaskRejected(_AgentTaskEvent, kw_only=True):
    reason: Literal["lost", "late", "invalid"]
    message_id: str | None = None
    """Id of the `reject-proposal` sent to the agent."""


class TaskProgress(_AgentTaskEvent, kw_only=True):
    percent: float | None = None
    note: str = ""


class TaskCompleted(_AgentTaskEvent, kw_only=True):
    result: Any


class TaskFailed(_TaskEvent, kw_only=True):
    reason: str
    refusals: dict[str, str] = {}
    failures: dict[str, str] = {}


class TaskCancelled(_TaskEvent, kw_only=True):
    reason: str | None = None
    contractor: str | None = None
    """The agent that was working the task, sent a FIPA `cancel`."""
    message_id: str | None = None
    """Id of that `cancel`."""


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "task.created": TaskCreated,
    "task.cfp_sent": CfpSent,
    "task.proposal_received": ProposalReceived,
    "task.refused": TaskRefused,
    "task.awarded": TaskAwarded,
    "task.rejected": TaskRejected,
    "task.progress": TaskProgress,
    "task.completed": TaskCompleted,
    "task.failed": TaskFailed,
    "task.cancelled": TaskCancelled,
}


# --- group run events (grouprun-<id>) ----------------------------------------------------


class _RunEvent(msgspec.Struct, kw_only=True):
    """The field every ``grouprun.*`` event starts with: which run."""

    run_id: str


class RunStarted(_RunEvent, kw_only=True):
    cluster: str
    strategy: GroupStrategy
    agent_ids: list[str]
    input: Any
    budget: Budget | None = None
    timeout_seconds: float = 120


class _RunAgentEvent(_RunEvent, kw_only=True):
    """The fields every event about one agent's part in a group run starts with."""

    agent_id: str
    stage: str
    """`parallel`, `map`, `reduce`, `pipeline[<n>]`, `race`."""


class RunRequested(_RunAgentEvent, kw_only=True):
    """A `request` went to one agent (its `message_id` is the reply's `in-reply-to`)."""

    message_id: str
    input: Any = None


class RunAgentResult(_RunAgentEvent, kw_only=True, omit_defaults=True):
    ok: bool
    output: Any = None
    error: str | None = None
    usage: dict[str, float] = {}
    """What the agent reported spending (`tokens`, `cost_usd`), when it did."""


class RunFinishedEvent(_RunEvent, kw_only=True, omit_defaults=True):
    """`grouprun.completed` / `grouprun.failed`."""

    result: Any = None
    winner: str | None = None
    cancelled: list[str] = []
    error: str | None = None


class RunBudgetWarning(_RunEvent, kw_only=True):
    """`grouprun.budget_warning`: the run has spent 80 % of a limit of its budget."""

    kind: Literal["tokens", "cost"]
    used: float
    limit: float
    ratio: float


RUN_EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "grouprun.started": RunStarted,
    "grouprun.budget_warning": RunBudgetWarning,
    "grouprun.requested": RunRequested,
    "grouprun.agent_result": RunAgentResult,
    "grouprun.completed": RunFinishedEvent,
    "grouprun.failed": RunFinishedEvent,
}


task_stream = ScopedStream("task")
"""Stream of a task's events: ``task-<id>`` in ``default``, else ``task-<namespace>_<id>``."""


run_stream = ScopedStream("grouprun")
"""Stream of a group run's events (scoped by namespace as :func:`task_stream`)."""
