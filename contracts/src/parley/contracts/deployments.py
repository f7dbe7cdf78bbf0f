"""The deployment service: rolling a new definition of an agent out, and back.

A **deployment** (stream ``deployment-<id>``, scoped by namespace like tasks) names an agent
(or a cluster, whose template it rolls through the cluster's agents), the new definition (a
whole :class:`~parley.contracts.registry.AgentSpec`), a version label and how to roll it out
(:class:`Rollout`): ``immediate`` (all traffic at once), ``rolling`` (instances moved
``batch_size`` at a time, ``batch_pause_s`` apart), ``blue_green`` (the new version up beside
the old at 0 %, then all traffic at once, the old kept for ``rollback_window_s``) or
``canary`` (stages of ``percentage`` × ``duration_s``); each judged against
``error_threshold`` and ``latency_p99_ms`` once ``min_samples`` turns are seen. It runs
``rolling_out`` (step by step; ``paused`` stops the clock), then ``applying`` (promoted: the
registry is given the definition, a new agent version), then ``completed``; or it ends
``rolled_back`` (by hand, with a reason, or by itself past a threshold, with the figures) or
``failed`` (the registry refused the definition).

One deployment per agent (and per cluster) is active at a time: a slot (stream
``deploymentslot-<agent>``, scoped by namespace) is claimed before the deployment is created.
"""

from typing import Annotated
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Command
from parley.contracts.errors import ErrorBody
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.ids import ScopedStream
from parley.contracts.ids import named_stream
from parley.contracts.registry import AgentSpec

__all__ = [
    "ACTIVE",
    "EVENT_TYPES",
    "SERVICE",
    "CreateDeployment",
    "BatchStarted",
    "DeploymentAction",
    "DeploymentCompleted",
    "DeploymentCreated",
    "DeploymentFailed",
    "DeploymentPaused",
    "DeploymentPromoted",
    "DeploymentReply",
    "DeploymentResumed",
    "DeploymentRolledBack",
    "DeploymentSlotClaimed",
    "DeploymentStatus",
    "DeploymentView",
    "Health",
    "ListDeployments",
    "Rollout",
    "Stage",
    "StageStarted",
    "StageView",
    "Strategy",
    "Switched",
    "VersionMetrics",
    "WindowView",
    "cluster_slot_stream",
    "deployment_stream",
    "slot_stream",
]

SERVICE = "deployment"

Strategy = Literal["immediate", "rolling", "blue_green", "canary"]
"""How a deployment moves traffic to the new definition."""
DeploymentStatus = Literal[
    "rolling_out", "paused", "applying", "completed", "rolled_back", "failed"
]
ACTIVE: frozenset[str] = frozenset({"rolling_out", "paused", "applying"})
"""The statuses of a deployment that holds its agent's slot."""

DeploymentId = Annotated[str, Meta(pattern=ID_PATTERN)]
Seconds = Annotated[float, Meta(ge=0, le=7 * 86400)]


class Stage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One canary stage: ``percentage`` of the traffic on the new version for ``duration_s``."""

    percentage: Annotated[int, Meta(ge=1, le=100)]
    duration_s: Seconds = 0.0


class Health(msgspec.Struct, kw_only=True):
    """What was measured of the new version when a deployment was judged."""

    samples: int = 0
    """Turns seen on the new version."""
    errors: int = 0
    """Of which failed."""
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float:
        """``errors / samples`` (0 without samples)."""
        return self.errors / self.samples if self.samples else 0.0


class Rollout(msgspec.Struct, kw_only=True):
    """How a deployment moves traffic to the new definition, and how it is judged.

    The strategy's own parameters are ``None`` when not given; a parameter another strategy
    takes is refused (422), and the service fills the defaults.
    """

    strategy: Strategy = "canary"
    stages: Annotated[list[Stage], Meta(max_length=16)] = []
    """``canary``: its stages, percentages rising; the last reaching 100 % promotes."""
    batch_size: Annotated[int, Meta(ge=1, le=1024)] | None = None
    """``rolling``: instances (a cluster's agents) moved to the new version per batch."""
    batch_pause_s: Seconds | None = None
    """``rolling``: the pause after each batch but the last (default 60)."""
    warmup_s: Seconds | None = None
    """``blue_green``: how long the new version stands beside the old at 0 % (default 0)."""
    rollback_window_s: Seconds | None = None
    """``blue_green``: how long the old version is kept after the switch (default 300)."""
    rollback_on_error: bool = True
    error_threshold: Annotated[float, Meta(ge=0, le=1)] = 0.05
    """Error rate of the new version above which it rolls back by itself."""
    latency_p99_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None
    """Latency p99 of the new version's turns above which it rolls back by itself."""
    min_samples: Annotated[int, Meta(ge=1, le=1_000_000)] = 20
    """Turns on the new version before it is judged."""


# --- commands ------------------------------------------------------------------------------


class CreateDeployment(Command, kw_only=True):
    """Start rolling ``spec`` out to agent ``agent_id``, or through cluster ``cluster``."""

    agent_id: Annotated[str, Meta(pattern=ID_PATTERN)] | None = None
    cluster: Annotated[str, Meta(pattern=NAMESPACE_PATTERN)] | None = None
    """A cluster whose agents (``agent_ids``, in order) take the new template by batches."""
    agent_ids: Annotated[list[str], Meta(max_length=1000)] = []
    spec: AgentSpec
    """The whole new definition (a cluster's: its template)."""
    version_label: Annotated[str, Meta(min_length=1, max_length=64)]
    rollout: Rollout = msgspec.field(default_factory=Rollout)
    from_version: int = 0
    """The agent stream's version the deployment starts from (for the record)."""
    deployment_id: DeploymentId | None = None


class DeploymentAction(Command, kw_only=True):
    """Promote (skip to 100 %), pause, resume or roll back a deployment by hand."""

    deployment_id: DeploymentId
    action: Literal["promote", "pause", "resume", "rollback"]
    reason: Annotated[str, Meta(max_length=1024)] = ""


class ListDeployments(Command, kw_only=True):
    """The deployments of a namespace (of one agent, of one status, or the one named), newest
    first, with what the service measured of each new version."""

    agent_id: str | None = None
    status: DeploymentStatus | None = None
    deployment_id: str | None = None


# --- views and reply -----------------------------------------------------------------------


class StageView(msgspec.Struct, kw_only=True):
    """A step as it ran: a canary's stage, a rolling batch, a blue-green phase."""

    percentage: int
    duration_s: float
    started_at: str | None = None
    ended_at: str | None = None
    moved: int | None = None
    """A rolling batch: instances (a cluster's agents) on the new version once it started."""
    agent_ids: list[str] | None = None
    """A cluster's batch: the agents it moved (each by its own deployment)."""


class WindowView(msgspec.Struct, kw_only=True):
    """A blue-green deployment's rollback window: the old version kept after the switch."""

    rollback_window_s: float
    opens_at: str | None = None
    """When all traffic switched to the new version."""
    closes_at: str | None = None
    """When it ends (or ended); a rollback before then switches all traffic back."""


class VersionMetrics(msgspec.Struct, kw_only=True):
    """What was measured of one version of the agent during the deployment."""

    version: Literal["current", "new"]
    samples: int
    errors: int
    error_rate: float
    success_rate: float
    p99_ms: float | None = None


class DeploymentView(msgspec.Struct, kw_only=True):
    """A deployment as the API shows it."""

    id: str
    namespace: str
    agent_id: str
    version_label: str
    strategy: Strategy
    status: DeploymentStatus
    current_stage: int | None
    """Index into ``stages`` of the running stage (none before or after)."""
    percentage: int
    """Traffic share of the new version now."""
    stages: list[StageView]
    """Every step with its times: a canary's stages, a rolling deployment's batches, a
    blue-green deployment's two phases (0 % beside the old, then 100 %)."""
    rollback_on_error: bool
    error_threshold: float
    latency_p99_ms: float | None
    min_samples: int
    batch_size: int | None
    instances: int
    """What a rolling deployment moves: the agent's instances, or a cluster's agents."""
    window: WindowView | None
    cluster: str | None
    from_version: int
    agent_version: int | None
    """The agent stream's version the new definition became (once completed)."""
    reason: str | None
    health: Health | None
    """The figures it was last judged on (e.g. why it rolled back)."""
    metrics: list[VersionMetrics]
    """Per version, what was measured (the new version's figures once judged)."""
    spec: AgentSpec
    created_at: str
    updated_at: str
    version: int
    """The deployment stream's version."""


class DeploymentReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Reply to every deployment command."""

    ok: bool
    deployment: DeploymentView | None = None
    deployments: list[DeploymentView] | None = None
    version: int = 0
    position: int = 0
    error: ErrorBody | None = None


# --- events --------------------------------------------------------------------------------


class DeploymentCreated(Rollout, kw_only=True):
    """A deployment was accepted (its slot claimed), with its rollout rules."""

    deployment_id: str
    agent_id: str
    """The agent; empty for a cluster's deployment."""
    spec: AgentSpec
    version_label: str
    from_version: int
    instances: int = 1
    """What a rolling deployment moves: the agent's instances, or the cluster's agents."""
    cluster: str | None = None
    agent_ids: list[str] = []
    """A cluster's agents, in the order their batches take them."""


class _DeploymentEvent(msgspec.Struct, kw_only=True):
    """What every event of a deployment's stream after its creation names."""

    deployment_id: str


class StageStarted(_DeploymentEvent, kw_only=True):
    """A step began: ``percentage`` of the traffic goes to the new version.

    ``deployment.stage_started``: a canary's stage, or a blue-green deployment's new version
    standing beside the old (0 %).
    """

    stage: int
    percentage: int


class BatchStarted(StageStarted, kw_only=True):
    """``deployment.batch_started``: a rolling batch moved ``moved`` of ``instances``."""

    moved: int
    instances: int
    agent_ids: list[str] = []
    """A cluster's batch: the agents it moves (each by its own immediate deployment)."""


class Switched(StageStarted, kw_only=True):
    """``deployment.switched``: blue-green, all traffic on the new version; the old is kept
    for ``rollback_window_s``."""

    rollback_window_s: float


class DeploymentPaused(_DeploymentEvent, kw_only=True):
    """The stage clock stopped."""

    reason: str = ""


class DeploymentResumed(_DeploymentEvent, kw_only=True):
    """The stage clock runs again (the stage's remaining time from now)."""


class DeploymentPromoted(_DeploymentEvent, kw_only=True):
    """All traffic goes to the new version: the last stage passed, or by hand."""

    reason: str = ""


class DeploymentRolledBack(_DeploymentEvent, kw_only=True):
    """Traffic went back to the old version: by hand, or by itself past the threshold."""

    reason: str
    automatic: bool = False
    health: Health | None = None


class DeploymentCompleted(_DeploymentEvent, kw_only=True):
    """The registry holds the new definition (agent stream version ``agent_version``)."""

    agent_version: int


class DeploymentFailed(_DeploymentEvent, kw_only=True):
    """The registry refused the new definition."""

    reason: str


class DeploymentSlotClaimed(msgspec.Struct, kw_only=True):
    """Deployment ``deployment_id`` holds agent ``agent_id``'s one active slot."""

    agent_id: str
    deployment_id: str


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "deployment.created": DeploymentCreated,
    "deployment.stage_started": StageStarted,
    "deployment.batch_started": BatchStarted,
    "deployment.switched": Switched,
    "deployment.paused": DeploymentPaused,
    "deployment.resumed": DeploymentResumed,
    "deployment.promoted": DeploymentPromoted,
    "deployment.rolled_back": DeploymentRolledBack,
    "deployment.completed": DeploymentCompleted,
    "deployment.failed": DeploymentFailed,
    "deployment_slot.claimed": DeploymentSlotClaimed,
}
"""Event type → payload type of the deployment service's events."""


deployment_stream = ScopedStream("deployment")
"""Stream of a deployment: ``deployment-<id>`` in ``default``, else scoped."""


slot_stream = ScopedStream("deploymentslot")
"""Stream of the claims on an agent's one active deployment."""


def cluster_slot_stream(namespace: str, cluster: str) -> str:
    """Stream of the claims on a cluster's one active rollout."""
    return named_stream("deploymentslot", namespace, f"cluster/{cluster}")
