"""The registry's bounded context: agent definitions, commands, events and replies.

Commands come from outside and forbid unknown fields; events do not (old readers skip new
fields). Event payloads are the ``data`` of an :class:`~parley.contracts.envelope.Event`.
"""

from enum import StrEnum
from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Command
from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import IdStream
from parley.contracts.ids import Namespace
from parley.contracts.ids import NameStream

__all__ = [
    "SERVICE",
    "AgentAction",
    "AgentActionCommand",
    "AgentCreated",
    "AgentDeleted",
    "AgentName",
    "AgentPatch",
    "AgentSpec",
    "AgentState",
    "AgentStateChanged",
    "AgentUpdated",
    "AgentView",
    "Bidding",
    "Budget",
    "CommandReply",
    "CreateAgent",
    "DeleteAgent",
    "EVENT_TYPES",
    "AgentNameClaimed",
    "AgentNameReleased",
    "RegistryCommand",
    "Memory",
    "ModelParams",
    "Namespace",
    "StrategySpec",
    "ToolSpec",
    "Trigger",
    "UpdateAgent",
    "agent_stream",
    "name_stream",
]

SERVICE = "registry"

AgentName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f/]+$",
        description="Unique per namespace; any printable characters except `/`.",
    ),
]
Capability = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
LabelKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_./-]{1,63}$")]
LabelValue = Annotated[str, Meta(max_length=256)]
AgentId = Annotated[str, Meta(pattern=ID_PATTERN, description="Agent id.")]


class AgentState(StrEnum):
    """Lifecycle: created → running ⇄ paused → stopped, created → stopped, any → failed."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"


class AgentAction(StrEnum):
    """Lifecycle actions, as `POST /agents/{id}/<action>` or `/actions`."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    FAIL = "fail"


class ModelParams(Strict):
    """Model parameters, passed to the provider."""

    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    """Sampling temperature, 0–2."""
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    """Upper bound on output tokens per model call."""
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    """Nucleus sampling mass."""
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    """Reasoning effort for models that support it."""
    budget_tokens: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    """Thinking-token budget for models that support it."""


class ToolSpec(Strict):
    """A tool the agent may call, with its configuration."""

    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    """A built-in tool name (see `GET /api/v1/tools`)."""
    config: dict[str, Any] = {}
    """Tool configuration, validated against the tool's JSON Schema."""


class StrategySpec(Strict):
    """How the agent works a request."""

    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = "reactive"
    """`reactive` or `plan_and_execute`."""
    config: dict[str, Any] = {}
    """Strategy options, e.g. `max_iterations`."""


class Trigger(Strict):
    """What starts the agent's work."""

    type: Literal["manual", "webhook", "periodic"] = "manual"
    """Trigger type."""
    interval_seconds: Annotated[int, Meta(ge=1, le=31_536_000)] | None = None
    """For `periodic`: fire every N seconds."""
    cron: Annotated[str, Meta(max_length=128)] | None = None
    """For `periodic`: a five-field cron expression instead of an interval."""


class Memory(Strict):
    """Semantic memory settings."""

    enabled: bool = False
    """Whether the agent keeps semantic memory."""
    scope: Literal["agent", "session", "cluster", "namespace"] = "agent"
    """Who shares the memory: the agent alone (`agent`; `session` too, outside a session),
    the agents of its cluster (`cluster`), or every agent of the namespace (`namespace`)."""


class Bidding(Strict):
    """How the agent answers a Contract Net `cfp`.

    The deterministic policy refuses a task whose required capabilities the agent lacks, or
    when its load is at `max_load`; otherwise it proposes `cost = base_cost + cost_per_second
    × estimated time`, `estimated_time_s` = its measured average response time (or
    `default_time_s`) scaled up by its load, and `confidence` = its success rate (or
    `confidence` when set). With `llm`, the agent's model is then asked (a turn) whether to
    bid: its JSON verdict `{"bid": false, "reason"}` refuses, a `confidence` replaces the
    policy's; no verdict leaves the policy's bid.
    """

    policy: Literal["deterministic", "llm"] = "deterministic"
    base_cost: Annotated[float, Meta(ge=0)] = 1.0
    cost_per_second: Annotated[float, Meta(ge=0)] = 0.0
    default_time_s: Annotated[float, Meta(gt=0)] = 1.0
    confidence: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_load: Annotated[int, Meta(ge=1)] | None = None
    refuse: bool = False
    """Always refuse (an agent that never takes tendered work)."""


class Budget(Strict):
    """Spending limits; calls past them are refused with `BUDGET_EXCEEDED`."""

    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    """Token budget."""
    max_cost_usd: Annotated[float, Meta(gt=0)] | None = None
    """Cost budget in US dollars."""
    period: Literal["total", "day", "month"] = "total"
    """Window the budget applies to."""


class AgentSpec(Strict):
    """An agent's definition: everything a user configures."""

    name: AgentName
    """Unique per namespace."""
    description: Annotated[str, Meta(max_length=4096)] = ""
    """What the agent is for."""
    provider: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "offline"
    """`offline`, `anthropic`, `openai` or `openai_compatible`."""
    model: Annotated[str, Meta(min_length=1, max_length=128)] = "offline-1"
    """Model name at the provider."""
    system_prompt: Annotated[str, Meta(max_length=100_000)] | None = None
    """System prompt; or name a `persona`."""
    persona: Annotated[str, Meta(max_length=128)] | None = None
    """Name of a persona used as the system prompt."""
    params: ModelParams = msgspec.field(default_factory=ModelParams)
    """Model parameters."""
    tools: Annotated[list[ToolSpec], Meta(max_length=64)] = []
    """Tools the agent may call (only these)."""
    capabilities: Annotated[list[Capability], Meta(max_length=64)] = []
    """What the agent can do; used for capability routing and task tenders."""
    strategy: StrategySpec = msgspec.field(default_factory=StrategySpec)
    """Execution strategy."""
    trigger: Trigger = msgspec.field(default_factory=Trigger)
    """What starts the agent's work."""
    memory: Memory = msgspec.field(default_factory=Memory)
    """Semantic memory settings."""
    budget: Budget | None = None
    """Spending limits."""
    labels: dict[LabelKey, LabelValue] = {}
    """Free-form key/value labels, filterable."""
    parent_id: AgentId | None = None
    """Parent agent, for hierarchies."""
    instances: Annotated[int, Meta(ge=0, le=1024)] = 1
    """Concurrency slots across runtime processes."""
    bidding: Bidding = msgspec.field(default_factory=Bidding)
    """How the agent bids for tendered tasks."""


class AgentPatch(Strict):
    """A partial update: fields present replace the definition's (labels merge; null removes)."""

    name: AgentName | None = None
    description: Annotated[str, Meta(max_length=4096)] | None = None
    provider: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    model: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    system_prompt: Annotated[str, Meta(max_length=100_000)] | None = None
    persona: Annotated[str, Meta(max_length=128)] | None = None
    params: ModelParams | None = None
    tools: Annotated[list[ToolSpec], Meta(max_length=64)] | None = None
    capabilities: Annotated[list[Capability], Meta(max_length=64)] | None = None
    strategy: StrategySpec | None = None
    trigger: Trigger | None = None
    memory: Memory | None = None
    budget: Budget | None = None
    labels: dict[LabelKey, LabelValue | None] | None = None
    parent_id: AgentId | None = None
    instances: Annotated[int, Meta(ge=0, le=1024)] | None = None
    bidding: Bidding | None = None


# --- commands (request bodies on parley.cmd.registry.<verb>) ---------------------------


class CreateAgent(Command, kw_only=True):
    """Register a new agent (state `created`)."""

    spec: AgentSpec
    """The definition."""
    agent_id: AgentId | None = None
    """Id to use; derived from an idempotency key so a retried create lands once."""


class UpdateAgent(Command, kw_only=True):
    """Change an agent's definition; each change is a new version."""

    agent_id: AgentId
    patch: AgentPatch
    expected_version: int | None = None
    """`If-Match`: refuse with `CONCURRENCY_CONFLICT` unless the agent is at this version."""


class AgentActionCommand(Command, kw_only=True):
    """Drive the lifecycle: start, pause, resume, stop, fail."""

    agent_id: AgentId
    action: AgentAction
    reason: Annotated[str, Meta(max_length=1024)] | None = None
    force: bool = False
    """Allow `stop` from `failed`."""
    expected_version: int | None = None


class DeleteAgent(Command, kw_only=True):
    """Tombstone an agent: its events stay, it disappears from views, its name is freed."""

    agent_id: AgentId
    reason: Annotated[str, Meta(max_length=1024)] | None = None
    expected_version: int | None = None


RegistryCommand = CreateAgent | UpdateAgent | AgentActionCommand | DeleteAgent


class CommandReply(Reply, kw_only=True):
    """Reply to every command: the new version and global position, or an error."""

    agent_id: str | None = None


# --- events (data of agent.* events) ----------------------------------------------------


class _AgentStreamEvent(msgspec.Struct, kw_only=True):
    """The field every event on an agent's stream starts with: which agent."""

    agent_id: str


class AgentCreated(_AgentStreamEvent, kw_only=True):
    """A new agent was registered (state `created`)."""

    spec: AgentSpec


class AgentUpdated(_AgentStreamEvent, kw_only=True):
    """An agent's definition changed (a new version)."""

    spec: AgentSpec
    """The whole new definition."""
    changed: list[str]
    """Names of the fields that changed."""


class AgentStateChanged(_AgentStreamEvent, kw_only=True):
    """An agent moved through its lifecycle."""

    from_state: AgentState
    to_state: AgentState
    action: AgentAction
    reason: str | None = None


class AgentDeleted(_AgentStreamEvent, kw_only=True):
    """An agent was tombstoned."""

    name: str
    reason: str | None = None


class _NameClaimEvent(msgspec.Struct, kw_only=True):
    """The fields of an event about an agent name: the name and the agent holding it."""

    name: str
    agent_id: str


class AgentNameClaimed(_NameClaimEvent, kw_only=True):
    """A name taken in a namespace (stream `agentname-<namespace>-<hash>`)."""


class AgentNameReleased(_NameClaimEvent, kw_only=True):
    """A name was freed by a delete or a rename."""


AgentEvent = AgentCreated | AgentUpdated | AgentStateChanged | AgentDeleted
EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "agent.created": AgentCreated,
    "agent.updated": AgentUpdated,
    "agent.state_changed": AgentStateChanged,
    "agent.deleted": AgentDeleted,
    "agent_name.claimed": AgentNameClaimed,
    "agent_name.released": AgentNameReleased,
}
"""Event type name → payload type, for every event this context emits."""


class AgentView(msgspec.Struct, kw_only=True):
    """An agent as the API shows it: the definition plus state and bookkeeping.

    ``name``, ``status`` and ``capabilities`` repeat ``spec.name``, ``state`` and
    ``spec.capabilities`` at the top level, where clients of other platforms read them.
    """

    id: str
    namespace: str
    state: AgentState
    version: int
    created_at: str
    updated_at: str
    spec: AgentSpec
    name: str
    """`spec.name`."""
    status: AgentState
    """`state`, under the name other platforms use."""
    capabilities: list[Capability]
    """`spec.capabilities`."""
    warnings: list[str] = []
    """What the platform accepted but cannot vouch for, e.g. a model missing from the models
    catalogue (its parameters unchecked, its price unknown)."""


agent_stream = IdStream("agent")
"""Stream name of an agent's events."""


name_stream = NameStream("agentname")
"""Stream name of the claims on an agent name in a namespace."""
