"""`/api/v1/clusters`: deploy a manifest (JSON or YAML), list, read, pause/resume, delete, scale.

Writes are registry commands; a write answers once this edge's clusters *and* agents
projections show it (read your writes), so the response lists the agents as they now are.
A cluster's agents are ordinary agents (label `parley.dev/cluster=<name>`): the read joins
the agents projection (status, instances) and the runtime projection (metrics).
"""

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from msgspec import Meta

from parley.aggregates.cluster import agent_specs
from parley.contracts.clusters import (
    SERVICE,
    ClusterAction,
    ClusterCommand,
    ClusterManifest,
    ClusterView,
    CreateCluster,
    DeleteCluster,
    ScaleCluster,
    UpdateCluster,
)
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import CommandReply
from parley.edge._paging import page_by_key
from parley.edge.body import decode_body
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.listing import parse_labels
from parley.edge.projections.runtime_views import AgentMetrics
from parley.edge.request_ids import request_id
from parley.edge.routes.agents import provide_namespace
from parley.edge.schemas import Pagination

__all__ = ["cluster_router"]

PREFIX = "/api/v1/clusters"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PER_AGENT_S = 0.05
"""Extra seconds a cluster command may take per agent, on top of the command timeout."""


# --- shapes --------------------------------------------------------------------------------


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


class ClusterDetail(msgspec.Struct, kw_only=True):
    """A cluster: its manifest, state and agents."""

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
    agent_ids: list[str]
    agents: list[ClusterAgent]
    metrics: ClusterMetrics
    manifest: ClusterManifest


class ClusterSummary(msgspec.Struct, kw_only=True):
    """A cluster in a list."""

    name: str
    namespace: str
    state: str
    strategy: str
    scaling: bool
    agents_count: int
    labels: dict[str, str]
    version: int
    created_at: str
    updated_at: str


class ClusterResponse(msgspec.Struct, kw_only=True):
    """One cluster."""

    data: ClusterDetail


class ClusterList(msgspec.Struct, kw_only=True):
    """A page of clusters, by name."""

    data: list[ClusterSummary]
    pagination: Pagination


class ScaleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /clusters/{name}/scale`."""

    agent_name: Annotated[str, Meta(min_length=1, max_length=128)]
    """The agent's name in the cluster (template replicas: `<name>-<k>`)."""
    instances: Annotated[int, Meta(ge=0, le=1024)]
    """Concurrency slots to give it."""


class ScaleResult(msgspec.Struct, kw_only=True):
    """What a scale did."""

    agent_name: str
    agent_id: str
    current_instances: int
    target_instances: int


class ScaleResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}` of a scale."""

    data: ScaleResult


# --- helpers -------------------------------------------------------------------------------


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(ErrorEnvelope, description="Error envelope", generate_examples=False)
        for code in codes
    }


def _not_found(name: str, namespace: str) -> ApiError:
    return ApiError(
        ErrorCode.CLUSTER_NOT_FOUND,
        f"no cluster {name[:64]!r} in namespace {namespace}",
        {"name": name[:64]},
    )


def _cluster(state: State, namespace: str, name: str) -> ClusterView:
    view = state.clusters.get(namespace, name) if _NAME.match(name) else None
    if view is None:
        raise _not_found(name, namespace)
    return view


async def _run(
    request: Request[Any, Any, Any],
    state: State,
    verb: str,
    command: ClusterCommand,
    agents: int,
) -> CommandReply:
    """Send ``command``; wait until the clusters and agents projections show its effect.

    The reply is a `ClusterReply`; read as a `CommandReply` (same `ok`, `version`,
    `position`, `error`) since only those are needed here.
    """
    reply = await state.commands.request(
        SERVICE,
        verb,
        command,
        CommandReply,
        request_id=request_id(request.scope),
        traceparent=request.headers.get("traceparent"),
        within=state.settings.command_timeout + _PER_AGENT_S * agents,
    )
    timeout = state.settings.read_your_writes_timeout
    for projection in (state.clusters, state.projection):
        if not await projection.wait_for(reply.position, timeout):
            raise ApiError(
                ErrorCode.TIMEOUT,
                f"the change was recorded (version {reply.version}) but is not visible yet;"
                " read the cluster again shortly",
                {"version": reply.version, "position": reply.position},
            )
    return reply


def _detail(state: State, view: ClusterView) -> ClusterDetail:
    names = [spec.name for spec in agent_specs(view.manifest)]
    runtime = getattr(state, "runtime", None)
    agents: list[ClusterAgent] = []
    totals = ClusterMetrics()
    response_ms = 0.0
    for index, agent_id in enumerate(view.agent_ids):
        agent = state.projection.get(view.namespace, agent_id)
        name = names[index] if index < len(names) else agent_id
        if agent is None:
            agents.append(ClusterAgent(id=agent_id, name=name, status="deleted"))
            continue
        metrics: AgentMetrics | None = runtime.metrics(agent_id) if runtime is not None else None
        if metrics is not None:
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
    return ClusterDetail(
        name=view.name,
        namespace=view.namespace,
        state=view.state,
        strategy=view.manifest.spec.strategy,
        scaling=view.scaling,
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
        labels=dict(view.manifest.metadata.labels),
        agents_count=len(view.agent_ids),
        agent_ids=list(view.agent_ids),
        agents=agents,
        metrics=totals,
        manifest=view.manifest,
    )


def _summary(view: ClusterView) -> ClusterSummary:
    return ClusterSummary(
        name=view.name,
        namespace=view.namespace,
        state=view.state,
        strategy=view.manifest.spec.strategy,
        scaling=view.scaling,
        agents_count=len(view.agent_ids),
        labels=dict(view.manifest.metadata.labels),
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


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
    responses=_errors(400, 409, 413, 415, 422, 503, 504),
)
async def create_cluster(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    start: Annotated[bool, Parameter(description="Start the agents once created.")] = True,
) -> Response[ClusterResponse]:
    """Deploy a cluster from its manifest."""
    manifest = await decode_body(request, ClusterManifest)
    explicit = _explicit_namespace(request)
    declared = manifest.metadata.namespace
    if explicit is not None and declared not in ("default", explicit):
        message = f"the manifest says {declared!r} but the request is for {explicit!r}"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"metadata.namespace: {message}",
            [{"field": "body.metadata.namespace", "message": message}],
        )
    namespace = ns if explicit is not None else declared
    manifest = msgspec.structs.replace(
        manifest, metadata=msgspec.structs.replace(manifest.metadata, namespace=namespace)
    )
    command = CreateCluster(
        namespace=namespace, request_id=request_id(request.scope), manifest=manifest, start=start
    )
    await _run(request, state, "create_cluster", command, len(agent_specs(manifest)))
    view = _cluster(state, namespace, manifest.metadata.name)
    return Response(
        ClusterResponse(data=_detail(state, view)),
        status_code=201,
        headers={"Location": f"{PREFIX}/{view.name}"},
    )


@get(
    "/",
    summary="List clusters",
    description="By name; `state=active|paused` and `label=key=value` (repeatable) filter.",
    responses=_errors(400, 422),
)
async def list_clusters(
    state: State,
    ns: str,
    cluster_state: Annotated[
        str | None, Parameter(query="state", required=False, description="`active`, `paused`.")
    ] = None,
    label: Annotated[
        list[str] | None, Parameter(required=False, description="`key=value`, repeatable.")
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> ClusterList:
    """A page of the namespace's clusters."""
    if cluster_state is not None and cluster_state not in ("active", "paused"):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid state {cluster_state[:40]!r}: expected active or paused",
            [{"field": "query.state", "message": "expected active or paused"}],
        )
    labels = parse_labels(label or ())
    found = [
        view
        for view in state.clusters.clusters(ns)
        if (cluster_state is None or view.state == cluster_state)
        and all(view.manifest.metadata.labels.get(k) == v for k, v in labels)
    ]
    page, pagination = page_by_key(found, lambda v: v.name, limit=limit, cursor=cursor)
    return ClusterList(data=[_summary(v) for v in page], pagination=pagination)


@get("/{name:str}", summary="Read a cluster", responses=_errors(404))
async def get_cluster(state: State, ns: str, name: str) -> ClusterResponse:
    """The manifest, state, and each agent's status, instances and metrics."""
    return ClusterResponse(data=_detail(state, _cluster(state, ns, name)))


@patch(
    "/{name:str}",
    summary="Pause or resume a cluster",
    description='`{"action": "pause"|"resume"}` applies to every agent; agents already in'
    " that state are skipped (resume also starts agents never started).",
    opt={"body": ClusterAction},
    responses=_errors(400, 404, 409, 415, 422, 503, 504),
)
async def update_cluster(
    request: Request[Any, Any, Any], state: State, ns: str, name: str
) -> ClusterResponse:
    """Pause or resume every agent of the cluster."""
    view = _cluster(state, ns, name)
    body = await decode_body(request, ClusterAction)
    command = UpdateCluster(
        namespace=ns, request_id=request_id(request.scope), name=name, action=body.action
    )
    await _run(request, state, "update_cluster", command, len(view.agent_ids))
    return ClusterResponse(data=_detail(state, _cluster(state, ns, name)))


@delete(
    "/{name:str}",
    status_code=204,
    summary="Delete a cluster",
    description="Stops and deletes every agent of the cluster, then the cluster.",
    responses=_errors(404, 409, 503, 504),
)
async def delete_cluster(request: Request[Any, Any, Any], state: State, ns: str, name: str) -> None:
    """Delete the cluster and its agents."""
    view = _cluster(state, ns, name)
    command = DeleteCluster(namespace=ns, request_id=request_id(request.scope), name=name)
    await _run(request, state, "delete_cluster", command, 2 * len(view.agent_ids))


@post(
    "/{name:str}/scale",
    status_code=200,
    summary="Scale an agent of a cluster",
    description="Sets the agent's `instances`. While another scale of the same cluster is in"
    " progress the answer is `409 SCALING_IN_PROGRESS`.",
    opt={"body": ScaleRequest},
    responses=_errors(400, 404, 409, 415, 422, 503, 504),
)
async def scale_cluster(
    request: Request[Any, Any, Any], state: State, ns: str, name: str
) -> ScaleResponse:
    """Set one agent's instances."""
    _cluster(state, ns, name)
    body = await decode_body(request, ScaleRequest)
    command = ScaleCluster(
        namespace=ns,
        request_id=request_id(request.scope),
        name=name,
        agent_name=body.agent_name,
        instances=body.instances,
    )
    await _run(request, state, "scale_cluster", command, 1)
    detail = _detail(state, _cluster(state, ns, name))
    agent = next((a for a in detail.agents if a.name == body.agent_name), None)
    if agent is None:  # deleted by someone else between the command and now
        raise _not_found(name, ns)
    return ScaleResponse(
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
    dependencies={"ns": Provide(provide_namespace)},
    tags=["clusters"],
)
"""Every `/api/v1/clusters` route."""
