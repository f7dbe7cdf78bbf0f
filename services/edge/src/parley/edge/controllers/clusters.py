"""`/api/v1/clusters`: deploy a manifest (JSON or YAML), list, read, pause/resume, delete, scale
(an agent's instances, or the number of agents: see :mod:`.cluster_scale`).

Writes are registry commands; a write answers once this edge's clusters *and* agents
projections show it (read your writes), so the response lists the agents as they now are.
A cluster's agents are ordinary agents (label `parley.dev/cluster=<name>`): the read joins
the agents projection (status, instances) and the runtime projection (metrics).
"""

import re
from typing import Annotated
from typing import Any

import msgspec
from litestar import Request
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import patch
from litestar import post
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from litestar.params import Parameter

from parley.aggregates.cluster import agent_specs
from parley.contracts.clusters import SERVICE
from parley.contracts.clusters import ClusterAction
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import ClusterView
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.registry import CommandReply
from parley.edge.controllers.agent_list import parse_labels
from parley.edge.controllers.cluster_scale import ResizeResult
from parley.edge.controllers.cluster_scale import ScaleRequest
from parley.edge.controllers.cluster_scale import ScaleResult
from parley.edge.controllers.cluster_scale import check_quota
from parley.edge.controllers.cluster_scale import resize_command
from parley.edge.controllers.cluster_views import ClusterDetail
from parley.edge.controllers.cluster_views import ClusterSummary
from parley.edge.controllers.cluster_views import cluster_detail
from parley.edge.controllers.cluster_views import cluster_summary
from parley.edge.controllers.resources import Resource
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import created
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid_value
from parley.edge.http.errors import not_found
from parley.edge.http.paging import Paging
from parley.edge.http.params import Labels
from parley.edge.http.params import one_of
from parley.edge.projections.clusters import ClustersProjection
from parley.eventstore.follower import Follower

__all__ = ["ClusterOps", "cluster_not_found", "cluster_router"]

PREFIX = "/api/v1/clusters"
_NAME = re.compile(NAMESPACE_PATTERN)  # a cluster's name is a DNS label, like a namespace
_PER_AGENT_S = 0.05
"""Extra seconds a cluster command may take per agent, on top of the command timeout."""


def cluster_not_found(name: str, namespace: str) -> ParleyError:
    """``404 CLUSTER_NOT_FOUND``."""
    return not_found(ErrorCode.CLUSTER_NOT_FOUND, "cluster", "name", name, namespace, quote=True)


class ClusterOps(Resource[ClusterView, CommandReply]):
    """The cluster routes' reads and writes (one per request, from its dependencies).

    A cluster command's reply is a `ClusterReply`, read as a `CommandReply` (same `ok`,
    `version`, `position`, `error`) since only those are needed here.
    """

    service, reply, what = SERVICE, CommandReply, "cluster"

    def views(self) -> tuple[Follower, ...]:
        return (self.edge.clusters, self.edge.agents)

    def find(self, key: str, namespace: str) -> ClusterView | None:
        return self.edge.clusters.get(namespace, key) if _NAME.match(key) else None

    def missing(self, key: str, namespace: str) -> ParleyError:
        return cluster_not_found(key, namespace)

    def detail(self, name: str, namespace: str | None = None) -> ClusterDetail:
        return cluster_detail(self.edge.agents, self.edge.runtime, self.get(name, namespace))

    async def run_for(self, verb: str, command: msgspec.Struct, agents: int) -> CommandReply:
        """:meth:`run`, given time for ``agents`` agents on top of the command timeout."""
        within = self.edge.settings.command_timeout + _PER_AGENT_S * agents
        return await self.run(verb, command, within=within)


def _explicit_namespace(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("x-parley-namespace") or request.query_params.get("namespace")


# --- handlers ------------------------------------------------------------------------------


@post(
    "/",
    status_code=201,
    summary="Deploy a cluster",
    description="The manifest as JSON or, with `Content-Type: application/yaml` (or"
    " `application/x-yaml`, `text/yaml`), as YAML. Its agents are created (and started unless"
    " `start=false`); a name in use is `409 CLUSTER_EXISTS`. A bad manifest appends nothing.",
    opt={"body": ClusterManifest},
    responses=error_responses(400, 409, 413, 415, 422, 503, 504),
)
async def create_cluster(
    ops: NamedDependency[ClusterOps],
    start: Annotated[bool, Parameter(description="Start the agents once created.")] = True,
) -> Response[Data[ClusterDetail]]:
    """Deploy a cluster from its manifest."""
    manifest = await ops.body(ClusterManifest)
    explicit = _explicit_namespace(ops.request)
    declared = manifest.metadata.namespace
    if explicit is not None and declared not in ("default", explicit):
        message = f"the manifest says {declared!r} but the request is for {explicit!r}"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"metadata.namespace: {message}",
            [{"field": "body.metadata.namespace", "message": message}],
        )
    namespace = ops.ns if explicit is not None else declared
    manifest = msgspec.structs.replace(
        manifest, metadata=msgspec.structs.replace(manifest.metadata, namespace=namespace)
    )
    command = CreateCluster(
        namespace=namespace, request_id=ops.request_id, manifest=manifest, start=start
    )
    await ops.run_for("create_cluster", command, len(agent_specs(manifest)))
    detail = ops.detail(manifest.metadata.name, namespace)
    return created(detail, f"{PREFIX}/{detail.name}")


@get(
    "/",
    summary="List clusters",
    description="By name; `state=active|paused` and `label=key=value` (repeatable) filter.",
    responses=error_responses(400, 422),
)
async def list_clusters(
    clusters: NamedDependency[ClustersProjection],
    ns: NamedDependency[str],
    paging: NamedDependency[Paging],
    cluster_state: Annotated[str | None, one_of(("active", "paused"), query="state")] = None,
    label: Labels = None,
) -> Page[ClusterSummary]:
    """A page of the namespace's clusters."""
    if cluster_state is not None and cluster_state not in ("active", "paused"):
        raise invalid_value("state", cluster_state, "expected active or paused")
    labels = parse_labels(label or ())
    found = [
        view
        for view in clusters.clusters(ns)
        if (cluster_state is None or view.state == cluster_state)
        and all(view.manifest.metadata.labels.get(k) == v for k, v in labels)
    ]
    page = paging.page(found, lambda v: v.name)
    return Page(data=[cluster_summary(v) for v in page.data], pagination=page.pagination)


@get("/{name:str}", summary="Read a cluster", responses=error_responses(404))
async def get_cluster(ops: NamedDependency[ClusterOps], name: FromPath[str]) -> Data[ClusterDetail]:
    """The manifest, state, and each agent's status, instances and metrics."""
    return Data(data=ops.detail(name))


@patch(
    "/{name:str}",
    summary="Pause or resume a cluster",
    description='`{"action": "pause"|"resume"}` applies to every agent; agents already in'
    " that state are skipped (resume also starts agents never started).",
    opt={"body": ClusterAction},
    responses=error_responses(400, 404, 409, 415, 422, 503, 504),
)
async def update_cluster(
    ops: NamedDependency[ClusterOps], name: FromPath[str]
) -> Data[ClusterDetail]:
    """Pause or resume every agent of the cluster."""
    view = ops.get(name)
    body = await ops.body(ClusterAction)
    command = UpdateCluster(
        namespace=ops.ns, request_id=ops.request_id, name=name, action=body.action
    )
    await ops.run_for("update_cluster", command, len(view.agent_ids))
    return Data(data=ops.detail(name))


@delete(
    "/{name:str}",
    status_code=204,
    summary="Delete a cluster",
    description="Stops and deletes every agent of the cluster, then the cluster.",
    responses=error_responses(404, 409, 503, 504),
)
async def delete_cluster(ops: NamedDependency[ClusterOps], name: FromPath[str]) -> None:
    """Delete the cluster and its agents."""
    view = ops.get(name)
    command = DeleteCluster(namespace=ops.ns, request_id=ops.request_id, name=name)
    await ops.run_for("delete_cluster", command, 2 * len(view.agent_ids))


@post(
    "/{name:str}/scale",
    status_code=200,
    summary="Scale a cluster: its number of agents, or an agent's instances",
    description='`{"target_agents": N}` (or `targetAgents`, `replicas`) sets how many agents'
    " the cluster holds (1–1000): new ones from its template, or the newest stopped and"
    ' deleted. `{"agent_name", "instances"}` sets one agent\'s `instances`. While another'
    " scale of the same cluster is in progress the answer is `409 SCALING_IN_PROGRESS`.",
    opt={"body": ScaleRequest},
    responses=error_responses(400, 403, 404, 409, 415, 422, 503, 504),
)
async def scale_cluster(
    ops: NamedDependency[ClusterOps], name: FromPath[str]
) -> Data[ScaleResult | ResizeResult]:
    """Set the number of agents, or one agent's instances."""
    view = ops.get(name)
    body = await ops.body(ScaleRequest)
    if (count := body.agent_count()) is not None:
        held = sum(1 for _ in ops.edge.agents.agents(ops.ns))
        check_quota(view, count, held, ops.edge.settings.quota_max_agents)
        resize = resize_command(ops.ns, ops.request_id, name, count)
        await ops.run_for("resize_cluster", resize, 2 * abs(count - len(view.agent_ids)))
        ids = ops.get(name).agent_ids
        before = len(view.agent_ids)
        return Data(
            data=ResizeResult(name=name, from_agents=before, to_agents=len(ids), agent_ids=ids)
        )
    assert body.agent_name is not None and body.instances is not None
    command = ScaleCluster(
        namespace=ops.ns,
        request_id=ops.request_id,
        name=name,
        agent_name=body.agent_name,
        instances=body.instances,
    )
    await ops.run_for("scale_cluster", command, 1)
    detail = ops.detail(name)
    agent = next((a for a in detail.agents if a.name == body.agent_name), None)
    if agent is None:  # deleted by someone else between the command and now
        raise cluster_not_found(name, ops.ns)
    return Data(
        data=ScaleResult(
            agent_name=agent.name,
            agent_id=agent.id,
            current_instances=agent.instances if agent.instances is not None else 0,
            target_instances=body.instances,
        )
    )


cluster_router = Router(
    path=PREFIX,
    route_handlers=[
        create_cluster,
        list_clusters,
        get_cluster,
        update_cluster,
        delete_cluster,
        scale_cluster,
    ],
    dependencies={"ops": Provide(ClusterOps, sync_to_thread=False)},
    tags=["clusters"],
)
"""Every `/api/v1/clusters` route."""
