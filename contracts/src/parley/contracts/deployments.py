"""The deployment service: rolling a new definition of an agent out, and back.

A **deployment** (stream ``deployment-<id>``, scoped by namespace like tasks) names an agent,
the new definition (a whole :class:`~parley.contracts.registry.AgentSpec`), a version label
and a strategy: ``immediate`` (all traffic at once) or ``canary`` (stages of ``percentage`` ×
``duration_s``, judged against ``error_threshold`` once ``min_samples`` turns are seen). It
runs ``rolling_out`` (stage by stage; ``paused`` stops the clock), then ``applying`` (promoted:
the registry is given the definition, a new agent version), then ``completed``; or it ends
``rolled_back`` (by hand, with a reason, or by itself past the threshold, with the figures)
or ``failed`` (the registry refused the definition).

One deployment per agent is active at a time: a slot (stream ``deploymentslot-<agent>``,
scoped by namespace) is claimed before the deployment is created.
"""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Command
from parley.contracts.errors import ErrorBody
from parley.contracts.ids import ID_PATTERN, scoped
from parley.contracts.registry import AgentSpec

__all__ = [
    "ACTIVE",
    "EVENT_TYPES",
    "SERVICE",
    "CreateDeployment",
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
    "Stage",
    "StageStarted",
    "StageView",
    "Strategy",
    "deployment_stream",
    "slot_stream",
]

SERVICE = "deployment"

Strategy = Literal["immediate", "canary"]
"""How a deployment moves traffic to the new definition."""
DeploymentStatus = Literal[
    "rolling_out", "paused", "applying", "completed", "rolled_back", "failed"
]
ACTIVE: frozenset[str] = frozenset({"rolling_out", "paused", "applying"})
"""The statuses of a deployment that holds its agent's slot."""

DeploymentId = Annotated[str, Meta(pattern=ID_PATTERN)]


class Stage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One canary stage: ``percentage`` of the traffic on the new version for ``duration_s``."""

    percentage: Annotated[int, Meta(ge=1, le=100)]
    duration_s: Annotated[float, Meta(ge=0, le=7 * 86400)] = 0.0


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


# --- commands ------------------------------------------------------------------------------


class CreateDeployment(Command, kw_only=True):
    """Start rolling ``spec`` out to agent ``agent_id``."""

    agent_id: Annotated[str, Meta(pattern=ID_PATTERN)]
    spec: AgentSpec
    """The whole new definition."""
    version_label: Annotated[str, Meta(min_length=1, max_length=64)]
    strategy: Strategy = "canary"
    stages: Annotated[list[Stage], Meta(max_length=16)] = []
    """Canary stages, percentages increasing; the last reaching 100 % promotes."""
    rollback_on_error: bool = True
    error_threshold: Annotated[float, Meta(ge=0, le=1)] = 0.05
    """Error rate of the new version above which it rolls back by itself."""
    min_samples: Annotated[int, Meta(ge=1, le=1_000_000)] = 20
    """Turns on the new version before it is judged."""
    from_version: int = 0
    """The agent stream's version the deployment starts from (for the record)."""
    deployment_id: DeploymentId | None = None


class DeploymentAction(Command, kw_only=True):
    """Promote (skip to 100 %), pause, resume or roll back a deployment by hand."""

    deployment_id: DeploymentId
    action: Literal["promote", "pause", "resume", "rollback"]
    reason: Annotated[str, Meta(max_length=1024)] = ""


class ListDeployments(Command, kw_only=True):
    """The deployments of a namespace (of one agent, when named), newest first."""

    agent_id: str | None = None
    status: DeploymentStatus | None = None


# --- views and reply -----------------------------------------------------------------------


class StageView(msgspec.Struct, kw_only=True):
    """A stage as it ran."""

    percentage: int
    duration_s: float
    started_at: str | None = None
    ended_at: str | None = None


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
    rollback_on_error: bool
    error_threshold: float
    min_samples: int
    from_version: int
    agent_version: int | None
    """The agent stream's version the new definition became (once completed)."""
    reason: str | None
    health: Health | None
    """The figures it was last judged on (e.g. why it rolled back)."""
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


class DeploymentCreated(msgspec.Struct, kw_only=True):
    """A deployment was accepted (its slot claimed)."""

    deployment_id: str
    agent_id: str
    spec: AgentSpec
    version_label: str
    strategy: Strategy
    stages: list[Stage]
    rollback_on_error: bool
    error_threshold: float
    min_samples: int
    from_version: int


class StageStarted(msgspec.Struct, kw_only=True):
    """A canary stage began: ``percentage`` of the traffic goes to the new version."""

    deployment_id: str
    stage: int
    percentage: int


class DeploymentPaused(msgspec.Struct, kw_only=True):
    """The stage clock stopped."""

    deployment_id: str
    reason: str = ""


class DeploymentResumed(msgspec.Struct, kw_only=True):
    """The stage clock runs again (the stage's remaining time from now)."""

    deployment_id: str


class DeploymentPromoted(msgspec.Struct, kw_only=True):
    """All traffic goes to the new version: the last stage passed, or by hand."""

    deployment_id: str
    reason: str = ""


class DeploymentRolledBack(msgspec.Struct, kw_only=True):
    """Traffic went back to the old version: by hand, or by itself past the threshold."""

    deployment_id: str
    reason: str
    automatic: bool = False
    health: Health | None = None


class DeploymentCompleted(msgspec.Struct, kw_only=True):
    """The registry holds the new definition (agent stream version ``agent_version``)."""

    deployment_id: str
    agent_version: int


class DeploymentFailed(msgspec.Struct, kw_only=True):
    """The registry refused the new definition."""

    deployment_id: str
    reason: str


class DeploymentSlotClaimed(msgspec.Struct, kw_only=True):
    """Deployment ``deployment_id`` holds agent ``agent_id``'s one active slot."""

    agent_id: str
    deployment_id: str


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "deployment.created": DeploymentCreated,
    "deployment.stage_started": StageStarted,
    "deployment.paused": DeploymentPaused,
    "deployment.resumed": DeploymentResumed,
    "deployment.promoted": DeploymentPromoted,
    "deployment.rolled_back": DeploymentRolledBack,
    "deployment.completed": DeploymentCompleted,
    "deployment.failed": DeploymentFailed,
    "deployment_slot.claimed": DeploymentSlotClaimed,
}
"""Event type → payload type of the deployment service's events."""


def deployment_stream(namespace: str, deployment_id: str) -> str:
    """Stream of a deployment: ``deployment-<id>`` in ``default``, else scoped."""
    return f"deployment-{scoped(namespace, deployment_id)}"


def slot_stream(namespace: str, agent_id: str) -> str:
    """Stream of the claims on an agent's one active deployment."""
    return f"deploymentslot-{scoped(namespace, agent_id)}"
