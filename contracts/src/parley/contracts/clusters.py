"""Clusters (GoAgents clusters = Godel swarms): a named group of agents with a policy.

A cluster is declared by a manifest (JSON or YAML): ``apiVersion: parley.dev/v1``,
``kind: AgentCluster``, ``metadata`` (name, namespace, labels) and ``spec`` (resource policy,
agents or a template with replicas, default group strategy, budget). The registry records it
on ``cluster-<namespace>-<hash of name>`` and creates its agents (labelled
``parley.dev/cluster=<name>``).
"""

from typing import Annotated
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.commands import TracedCommand
from parley.contracts.errors import ErrorBody
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.ids import NameStream
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import Budget
from parley.contracts.registry import LabelKey
from parley.contracts.registry import LabelValue

__all__ = [
    "EVENT_TYPES",
    "CLUSTER_LABEL",
    "SERVICE",
    "ChangeClusterTemplate",
    "ClusterAction",
    "ClusterCommand",
    "ClusterCreated",
    "ClusterDeleted",
    "ClusterManifest",
    "ClusterName",
    "ClusterReply",
    "ClusterResizeFailed",
    "ClusterResizeStarted",
    "ClusterResized",
    "ClusterScaleFailed",
    "ClusterScaleStarted",
    "ClusterScaled",
    "ClusterSpec",
    "ClusterStateChanged",
    "ClusterTemplateChanged",
    "ClusterView",
    "CreateCluster",
    "DeleteCluster",
    "Metadata",
    "MAX_AGENTS",
    "ResizeCluster",
    "ResourcePolicy",
    "ScaleCluster",
    "Template",
    "UpdateCluster",
    "cluster_stream",
    "duration_seconds",
]

SERVICE = "registry"
"""Cluster commands are served by the registry (`parley.cmd.registry.<verb>_cluster`)."""

CLUSTER_LABEL = "parley.dev/cluster"
"""Label every agent of a cluster carries, with the cluster's name."""

ClusterName = Annotated[
    str,
    Meta(
        pattern=NAMESPACE_PATTERN,
        description="Unique per namespace: lowercase letters, digits and `-`, 1–63 characters.",
    ),
]
Duration = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{1,6}(\.[0-9]{1,3})?(ms|s|m|h)$",
        description="A duration such as `300s`, `5m`, `1h` or `500ms`.",
    ),
]
MAX_AGENTS = 1000
"""Most agents a cluster may hold (a template's ``replicas``, a resize's ``target_agents``)."""
AgentCount = Annotated[int, Meta(ge=1, le=MAX_AGENTS)]
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: float | str) -> float:
    """Seconds of a duration given as a number of seconds or as text (`300s`, `5m`)."""
    if not isinstance(value, str):
        return float(value)
    unit = "ms" if value.endswith("ms") else value[-1]
    return float(value[: -len(unit)]) * _UNIT_SECONDS[unit]


class ResourcePolicy(Strict):
    """How the cluster's agents use resources."""

    max_concurrent_agents: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    """At most this many agents in the cluster (they all run at once when started)."""
    idle_timeout: Annotated[float, Meta(gt=0, le=86_400)] | Duration | None = None
    """Seconds (or `300s`, `5m`) before an idle agent scales to zero (when `scale_to_zero`).
    Recorded on the cluster; the runtime's idle timeout is still the process-wide one."""
    scale_to_zero: bool = True
    """Whether idle agents drop their warm instances (recorded on the cluster)."""


class Template(Strict):
    """An agent definition replicated N times (names get `-1`, `-2`, …)."""

    spec: AgentSpec
    """The definition; replica `k` is named `<spec.name>-<k>`."""
    replicas: AgentCount = 1
    """How many agents to create from it."""


class ClusterSpec(Strict):
    """What the cluster holds."""

    resource_policy: ResourcePolicy = msgspec.field(default_factory=ResourcePolicy)
    """How the agents use resources."""
    agents: Annotated[list[AgentSpec], Meta(max_length=1000)] = []
    """Explicit agent definitions (names unique); or give a `template`, not both."""
    template: Template | None = None
    """One definition replicated `replicas` times."""
    strategy: Literal["parallel", "map-reduce", "pipeline", "race"] = "parallel"
    """Default strategy of the cluster's group runs."""
    budget: Budget | None = None
    """Spending limits; each agent without a budget of its own gets this one."""


class Metadata(Strict):
    """Name, namespace and labels."""

    name: ClusterName
    """The cluster's name."""
    namespace: Annotated[str, Meta(pattern=NAMESPACE_PATTERN)] = "default"
    """Tenant; must match the request's namespace when that is given."""
    labels: dict[LabelKey, LabelValue] = {}
    """Labels of the cluster; its agents get them too (their own win)."""


class ClusterManifest(Strict):
    """The whole manifest."""

    apiVersion: Literal["parley.dev/v1"]  # noqa: N815 - the manifest's field name
    """Always `parley.dev/v1`."""
    kind: Literal["AgentCluster"]
    """Always `AgentCluster`."""
    metadata: Metadata
    """Name, namespace and labels."""
    spec: ClusterSpec
    """What the cluster holds."""


class ClusterAction(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PATCH`: pause or resume every agent of the cluster."""

    action: Literal["pause", "resume"]
    """`pause` running agents, or `resume` paused (and start created) ones."""


class CreateCluster(TracedCommand, kw_only=True):
    """Record the cluster and create (and start) its agents."""

    manifest: ClusterManifest
    """The manifest; its `metadata.namespace` equals `namespace`."""
    start: bool = True
    """Start every agent once all are created."""


class UpdateCluster(TracedCommand, kw_only=True):
    """Pause or resume all agents."""

    name: ClusterName
    action: Literal["pause", "resume"]


class DeleteCluster(TracedCommand, kw_only=True):
    """Stop and delete the cluster's agents, then the cluster."""

    name: ClusterName


class ScaleCluster(TracedCommand, kw_only=True):
    """Set one agent's instances (`SCALING_IN_PROGRESS` while another scale runs)."""

    name: ClusterName
    agent_name: Annotated[str, Meta(min_length=1, max_length=128)]
    instances: Annotated[int, Meta(ge=0, le=1024)]


class ResizeCluster(TracedCommand, kw_only=True):
    """Set how many agents the cluster holds: new ones from its template, or the newest
    stopped and deleted (`SCALING_IN_PROGRESS` while another scale runs)."""

    name: ClusterName
    target_agents: AgentCount


class ChangeClusterTemplate(TracedCommand, kw_only=True):
    """Record the template a completed template deployment gave the cluster's agents, so its
    later agents are made from it (the deployment service sends it; the same template again
    records nothing)."""

    name: ClusterName
    spec: AgentSpec
    """The deployment's template; the cluster's keeps its name, instances and labels (the
    deployment's added) and, when this has none, its budget."""
    deployment_id: Annotated[str, Meta(min_length=1, max_length=128)]
    """The deployment that rolled it out."""


ClusterCommand = (
    CreateCluster
    | UpdateCluster
    | DeleteCluster
    | ScaleCluster
    | ResizeCluster
    | ChangeClusterTemplate
)


class ClusterReply(Reply, kw_only=True):
    """Reply to every cluster command (its error shape is `CommandReply`'s)."""

    # ``position`` counts the agents' events the command appended too.

    name: str | None = None
    agent_ids: list[str] = []
    """The cluster's agents, in manifest order."""


class ClusterView(msgspec.Struct, kw_only=True):
    """A cluster as the API shows it (the edge adds its agents' state and metrics)."""

    name: str
    namespace: str
    manifest: ClusterManifest
    agent_ids: list[str]
    """Ids of the agents the cluster created, in manifest order."""
    state: Literal["active", "paused", "deleted"]
    version: int
    created_at: str
    updated_at: str
    scaling: bool = False
    """Whether a scale is in progress (`SCALING_IN_PROGRESS` for another)."""


# --- events (cluster-<namespace>-<hash>) -------------------------------------------------


class _ClusterEvent(msgspec.Struct, kw_only=True):
    """The field every ``cluster.*`` event starts with: which cluster."""

    name: str


class ClusterCreated(_ClusterEvent, kw_only=True):
    """`cluster.created`: after its agents were created (and started)."""

    manifest: ClusterManifest
    agent_ids: list[str]
    """One per expanded agent, in manifest order (template replicas `-1`…`-N`)."""


class _ScaleEvent(_ClusterEvent, kw_only=True):
    """The fields of every event of a scale: the cluster, its agent, the instances asked for."""

    agent_id: str
    agent_name: str
    instances: int


class ClusterScaleStarted(_ScaleEvent, kw_only=True):
    """`cluster.scale_started`: opens the scaling window (other scales get 409)."""


class ClusterScaled(_ScaleEvent, kw_only=True):
    """`cluster.scaled`: the agent's `instances` was set; closes the window."""


class ClusterScaleFailed(_ScaleEvent, kw_only=True):
    """`cluster.scale_failed`: setting the agent's `instances` failed; closes the window."""

    error: ErrorBody | None = None


class _ResizeEvent(_ClusterEvent, kw_only=True):
    """The fields of every event of a resize: how many agents the cluster had and is to have."""

    from_agents: int
    to_agents: int


class ClusterResizeStarted(_ResizeEvent, kw_only=True):
    """`cluster.resize_started`: opens the scaling window (other scales get 409)."""


class ClusterResized(_ResizeEvent, kw_only=True):
    """`cluster.resized`: the agents were created (and started) or stopped and deleted;
    closes the window."""

    agent_ids: list[str]
    """The cluster's agents now, oldest first."""


class ClusterResizeFailed(_ResizeEvent, kw_only=True):
    """`cluster.resize_failed`: closes the window; the agents created are deleted again, and
    the agents removed before the failure stay removed."""

    agent_ids: list[str]
    """The cluster's agents now, oldest first."""
    error: ErrorBody | None = None


class ClusterTemplateChanged(_ClusterEvent, kw_only=True):
    """`cluster.template_changed`: the manifest's template, after a template deployment
    completed (its agents already carry it)."""

    template: AgentSpec
    """The template now (`spec.template.spec`)."""
    deployment_id: str
    """The deployment that rolled it out."""


class _ClusterAgentsEvent(_ClusterEvent, kw_only=True):
    """The fields of an event about all of a cluster's agents."""

    agent_ids: list[str]


class ClusterStateChanged(_ClusterAgentsEvent, kw_only=True):
    """`cluster.paused` / `cluster.resumed`."""


class ClusterDeleted(_ClusterAgentsEvent, kw_only=True):
    """`cluster.deleted`: after its agents were stopped and deleted."""


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "cluster.created": ClusterCreated,
    "cluster.scale_started": ClusterScaleStarted,
    "cluster.scaled": ClusterScaled,
    "cluster.scale_failed": ClusterScaleFailed,
    "cluster.resize_started": ClusterResizeStarted,
    "cluster.resized": ClusterResized,
    "cluster.resize_failed": ClusterResizeFailed,
    "cluster.template_changed": ClusterTemplateChanged,
    "cluster.paused": ClusterStateChanged,
    "cluster.resumed": ClusterStateChanged,
    "cluster.deleted": ClusterDeleted,
}


cluster_stream = NameStream("cluster")
"""Stream of a cluster's events."""
