"""Clusters (GoAgents clusters = Godel swarms): a named group of agents with a policy.

A cluster is declared by a manifest (JSON or YAML): ``apiVersion: parley.dev/v1``,
``kind: AgentCluster``, ``metadata`` (name, namespace, labels) and ``spec`` (resource policy,
agents or a template with replicas, default group strategy, budget). The registry records it
on ``cluster-<namespace>-<hash of name>`` and creates its agents (labelled
``parley.dev/cluster=<name>``).
"""

import hashlib
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from parley.contracts.errors import ErrorBody
from parley.contracts.registry import AgentSpec, Budget

__all__ = [
    "EVENT_TYPES",
    "CLUSTER_LABEL",
    "ClusterAction",
    "ClusterManifest",
    "ClusterReply",
    "ClusterView",
    "CreateCluster",
    "DeleteCluster",
    "ScaleCluster",
    "UpdateCluster",
    "cluster_stream",
]

CLUSTER_LABEL = "parley.dev/cluster"
"""Label every agent of a cluster carries, with the cluster's name."""

ClusterName = Annotated[str, Meta(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ResourcePolicy(_Strict):
    """How the cluster's agents use resources."""

    max_concurrent_agents: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    idle_timeout: Annotated[float, Meta(gt=0, le=86_400)] | None = None
    """Seconds before an idle agent scales to zero (when `scale_to_zero`)."""
    scale_to_zero: bool = True


class Template(_Strict):
    """An agent definition replicated N times (names get `-1`, `-2`, …)."""

    spec: AgentSpec
    replicas: Annotated[int, Meta(ge=1, le=1000)] = 1


class ClusterSpec(_Strict):
    """What the cluster holds."""

    resource_policy: ResourcePolicy = msgspec.field(default_factory=ResourcePolicy)
    agents: Annotated[list[AgentSpec], Meta(max_length=1000)] = []
    template: Template | None = None
    strategy: Literal["parallel", "map-reduce", "pipeline", "race"] = "parallel"
    budget: Budget | None = None


class Metadata(_Strict):
    """Name, namespace and labels."""

    name: ClusterName
    namespace: Annotated[str, Meta(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = (
        "default"
    )
    labels: dict[str, str] = {}


class ClusterManifest(_Strict):
    """The whole manifest."""

    apiVersion: Literal["parley.dev/v1"]  # noqa: N815 - the manifest's field name
    kind: Literal["AgentCluster"]
    metadata: Metadata
    spec: ClusterSpec


class ClusterAction(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PATCH`: pause or resume every agent of the cluster."""

    action: Literal["pause", "resume"]


class _Command(_Strict, kw_only=True):
    namespace: str = "default"
    request_id: str | None = None
    traceparent: str | None = None


class CreateCluster(_Command, kw_only=True):
    """Record the cluster and create (and start) its agents."""

    manifest: ClusterManifest
    start: bool = True


class UpdateCluster(_Command, kw_only=True):
    """Pause or resume all agents."""

    name: ClusterName
    action: Literal["pause", "resume"]


class DeleteCluster(_Command, kw_only=True):
    """Stop and delete the cluster's agents, then the cluster."""

    name: ClusterName


class ScaleCluster(_Command, kw_only=True):
    """Set one agent's instances (`SCALING_IN_PROGRESS` while another scale runs)."""

    name: ClusterName
    agent_name: Annotated[str, Meta(min_length=1, max_length=128)]
    instances: Annotated[int, Meta(ge=0, le=1024)]


class ClusterReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Reply to every cluster command."""

    ok: bool
    name: str | None = None
    agent_ids: list[str] = []
    version: int = 0
    position: int = 0
    error: ErrorBody | None = None


class ClusterView(msgspec.Struct, kw_only=True):
    """A cluster as the API shows it (the edge adds its agents' state and metrics)."""

    name: str
    namespace: str
    manifest: ClusterManifest
    agent_ids: list[str]
    state: Literal["active", "paused", "deleted"]
    version: int
    created_at: str
    updated_at: str


# --- events (cluster-<namespace>-<hash>) -------------------------------------------------


class ClusterCreated(msgspec.Struct, kw_only=True):
    name: str
    manifest: ClusterManifest
    agent_ids: list[str]


class ClusterScaleStarted(msgspec.Struct, kw_only=True):
    name: str
    agent_id: str
    agent_name: str
    instances: int


class ClusterScaled(msgspec.Struct, kw_only=True):
    name: str
    agent_id: str
    agent_name: str
    instances: int


class ClusterStateChanged(msgspec.Struct, kw_only=True):
    """`cluster.paused` / `cluster.resumed`."""

    name: str
    agent_ids: list[str]


class ClusterDeleted(msgspec.Struct, kw_only=True):
    name: str
    agent_ids: list[str]


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "cluster.created": ClusterCreated,
    "cluster.scale_started": ClusterScaleStarted,
    "cluster.scaled": ClusterScaled,
    "cluster.paused": ClusterStateChanged,
    "cluster.resumed": ClusterStateChanged,
    "cluster.deleted": ClusterDeleted,
}


def cluster_stream(namespace: str, name: str) -> str:
    """Stream of a cluster's events."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"cluster-{namespace}-{digest}"
