"""What the cluster routes answer: a cluster joined with its agents and their metrics."""

from typing import Any

import msgspec

from parley.aggregates.cluster import agent_specs
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import ClusterView
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.runtime_views import AgentMetrics
from parley.edge.views import as_view

__all__ = [
    "ClusterAgent",
    "ClusterDetail",
    "ClusterMetrics",
    "ClusterSummary",
    "cluster_detail",
    "cluster_summary",
]


class ClusterAgent(msgspec.Struct, kw_only=True):
    """One agent of a cluster, as it is now."""

    id: str
    name: str
    """Its name in the manifest (template replicas: `<name>-<k>`)."""
    status: str
    """The agent's lifecycle state, or `deleted` if it was deleted on its own."""
    instances: int | None = None
    """Concurrency slots (the agent's `instances`)."""
    provider: str | None = None
    model: str | None = None
    version: int | None = None
    metrics: AgentMetrics | None = None
    """What its runs added up to (see `GET /api/v1/metrics/agents/{id}`)."""


class ClusterMetrics(msgspec.Struct, kw_only=True):
    """The cluster's agents' metrics, added up."""

    total_requests: int = 0
    active_conversations: int = 0
    average_response_time_ms: float | None = None
    total_tokens: int = 0
    cost_usd: float = 0.0
    warm_instances: int = 0


class ClusterSummary(msgspec.Struct, kw_only=True):
    """A cluster in a list."""

    name: str
    namespace: str
    state: str
    """`active` or `paused`."""
    strategy: str
    """Default strategy of its group runs."""
    scaling: bool
    """Whether a scale is in progress."""
    version: int
    created_at: str
    updated_at: str
    labels: dict[str, str]
    agents_count: int


class ClusterDetail(ClusterSummary, kw_only=True):
    """A cluster: its manifest, state and agents."""

    agent_ids: list[str]
    agents: list[ClusterAgent]
    metrics: ClusterMetrics
    manifest: ClusterManifest


def cluster_detail(
    agents_view: AgentsProjection, runtime: RuntimeProjection, view: ClusterView
) -> ClusterDetail:
    """A cluster with its agents' status, instances and metrics, as they are now."""
    names = [spec.name for spec in agent_specs(view.manifest)]
    agents: list[ClusterAgent] = []
    totals = ClusterMetrics()
    response_ms = 0.0
    for index, agent_id in enumerate(view.agent_ids):
        agent = agents_view.get(view.namespace, agent_id)
        name = names[index] if index < len(names) else agent_id
        if agent is None:
            agents.append(ClusterAgent(id=agent_id, name=name, status="deleted"))
            continue
        metrics = runtime.metrics(agent_id)
        totals.total_requests += metrics.total_requests
        totals.active_conversations += metrics.active_conversations
        totals.total_tokens += metrics.tokens.total
        totals.cost_usd += metrics.cost_usd
        totals.warm_instances += metrics.instances.count
        response_ms += (metrics.average_response_time_ms or 0.0) * metrics.total_requests
        agents.append(
            ClusterAgent(
                id=agent_id,
                name=name,
                status=agent.state.value,
                instances=agent.spec.instances,
                provider=agent.spec.provider,
                model=agent.spec.model,
                version=agent.version,
                metrics=metrics,
            )
        )
    if totals.total_requests:
        totals.average_response_time_ms = round(response_ms / totals.total_requests, 3)
    totals.cost_usd = round(totals.cost_usd, 8)
    return as_view(ClusterDetail, view, **_computed(view), agents=agents, metrics=totals)


def cluster_summary(view: ClusterView) -> ClusterSummary:
    """A cluster as a list shows it."""
    return as_view(ClusterSummary, view, **_computed(view))


def _computed(view: ClusterView) -> dict[str, Any]:
    """What both shapes show beyond the cluster's own fields."""
    labels = dict(view.manifest.metadata.labels)
    return {
        "strategy": view.manifest.spec.strategy,
        "labels": labels,
        "agents_count": len(view.agent_ids),
    }
