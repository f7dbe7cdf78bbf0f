"""Deployments: `POST /deployments` rolls a new definition of an agent out (202) — or a
cluster's new template through its agents —, `GET /deployments` and `GET /deployments/{id}`
show them, `POST /deployments/{id}/promote|pause|resume|rollback` steer one by hand, and
`PUT /agents/{id}/reload` is a shorthand that starts one. The deployment service decides;
this module checks the request first (422 with field errors, 404 for an unknown agent or
cluster) and reads a deployment from its stream, folded by the deployment aggregate."""

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from parley.aggregates.agent_spec import validate_spec
from parley.aggregates.deployment import evolve as evolve_deployment
from parley.aggregates.deployment_strategies import check_rollout
from parley.aggregates.deployment_view import view as deployment_view
from parley.contracts.agent_toml import TomlAgentError, agent_spec_from_toml
from parley.contracts.deployments import (
    SERVICE,
    CreateDeployment,
    DeploymentAction,
    DeploymentReply,
    DeploymentStatus,
    DeploymentView,
    ListDeployments,
    Rollout,
    Stage,
    Strategy,
    VersionMetrics,
    deployment_stream,
)
from parley.contracts.errors import ErrorCode, ParleyError
from parley.contracts.registry import AgentSpec
from parley.edge.controllers.clusters import cluster_not_found
from parley.edge.controllers.lookups import ID, require_agent
from parley.edge.dependencies import Store, Writes
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses, field_errors, invalid, not_found
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.eventstore.repository import fold

__all__ = ["DeploymentBody", "ReloadBody", "deployment_router", "reload_router"]

_FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
_METRICS_S = 1.0
"""How long a read waits for the deployment service's measured figures."""
_Action = Literal["promote", "pause", "resume", "rollback"]


class DeploymentBody(Rollout, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /deployments`: the agent (or cluster), its new definition and how to roll
    it out (the rollout's fields: `strategy`, its parameters, the thresholds)."""

    agent_id: str | None = None
    """The agent; or give `cluster`."""
    cluster: str | None = None
    """A cluster whose template changes: its agents take it batch by batch (`rolling`)."""
    version_label: Annotated[str, Meta(min_length=1, max_length=64)]
    """A name for the new version (e.g. `v2` or `prompt-2026-01`)."""
    spec: AgentSpec | None = None
    """The whole new definition as JSON; or give `config`."""
    config: Annotated[str, Meta(max_length=200_000)] | None = None
    """The whole new definition as TOML (Caxton's `config`)."""


class ActionBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional body of the actions: why."""

    reason: Annotated[str, Meta(max_length=1024)] = ""


def _definition(body: DeploymentBody) -> AgentSpec:
    """The new definition from `spec` or `config` (exactly one), validated."""
    if (body.spec is None) == (body.config is None):
        raise invalid("body.spec", "give the new definition as `spec` (JSON) or `config` (TOML)")
    spec = body.spec
    if spec is None:
        try:
            spec = agent_spec_from_toml(body.config or "")
        except msgspec.ValidationError as exc:
            raise ParleyError(
                ErrorCode.VALIDATION_ERROR,
                f"invalid body.config: {exc}",
                field_errors(exc, "body.config"),
            ) from None
        except (TomlAgentError, ValueError, RecursionError) as exc:
            raise invalid("body.config", f"malformed TOML: {exc}") from None
    validate_spec(spec)
    return spec


@post(
    "/",
    status_code=202,
    summary="Start a deployment",
    description="Rolls a new definition of an agent out: `immediate` (all traffic at once),"
    " `rolling` (`batch_size` instances at a time, `batch_pause_s` apart), `blue_green` (the"
    " new version beside the old, then all traffic at once, the old kept `rollback_window_s`)"
    " or `canary` (stages of `percentage` × `duration_s`); past `error_threshold` or"
    " `latency_p99_ms` over at least `min_samples` turns it rolls back by itself. With"
    " `cluster` instead of `agent_id`, a cluster's new template rolls through its agents"
    " (`rolling`, each agent's change a deployment). One active deployment per agent (and per"
    " cluster): another answers `409 DEPLOYMENT_IN_PROGRESS`.",
    opt={"body": DeploymentBody},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def create_deployment(
    request: Request[Any, Any, Any],
    agents: NamedDependency[AgentsProjection],
    clusters: NamedDependency[ClustersProjection],
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
) -> Response[Data[DeploymentView]]:
    """Check the request, then have the deployment service start the rollout."""
    body = await decode_body(request, DeploymentBody)
    members = _members(body, agents, clusters, ns) if body.cluster is not None else []
    return await _start(body, agents, writes, ns, members)


def _members(
    body: DeploymentBody, agents: AgentsProjection, clusters: ClustersProjection, ns: str
) -> list[str]:
    """The live agents of the cluster ``body`` names, in its order (404, or 422 when it was
    declared without a template)."""
    cluster = clusters.get(ns, body.cluster or "")
    if cluster is None:
        raise cluster_not_found(body.cluster or "", ns)
    if cluster.manifest.spec.template is None:
        raise invalid("body.cluster", f"cluster {cluster.name} has no template to change")
    return [a for a in cluster.agent_ids if agents.get(ns, a) is not None]


async def _start(
    body: DeploymentBody, agents: AgentsProjection, writes: Writes, ns: str, members: list[str]
) -> Response[Data[DeploymentView]]:
    """Check ``body`` (definition, rollout, agent), then start it: `202` with its view."""
    if (body.agent_id is None) == (body.cluster is None):
        raise invalid("body.agent_id", "name an `agent_id` or a `cluster`, not both")
    spec = _definition(body)
    check_rollout(body, cluster=body.cluster is not None)
    if body.agent_id is not None:
        require_agent(agents, ns, body.agent_id)
    command = CreateDeployment(
        namespace=ns,
        agent_id=body.agent_id,
        cluster=body.cluster,
        agent_ids=members,
        spec=spec,
        version_label=body.version_label,
        rollout=Rollout(**{f: getattr(body, f) for f in Rollout.__struct_fields__}),
    )
    reply = await writes.send(SERVICE, "create_deployment", command, DeploymentReply, views=())
    view = _shown(reply)
    return Response(
        Data(data=view),
        status_code=202,
        headers={"Location": f"/api/v1/deployments/{view.id}"},
    )


@get("/", summary="List deployments", responses=error_responses(422, 503))
async def list_deployments(
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
    agent_id: Annotated[str | None, QueryParameter(required=False)] = None,
    status: Annotated[DeploymentStatus | None, QueryParameter(required=False)] = None,
) -> Data[list[DeploymentView]]:
    """The namespace's deployments, newest first (of one agent, or one status, if asked)."""
    command = ListDeployments(namespace=ns, agent_id=agent_id, status=status)
    reply = await writes.send(SERVICE, "list_deployments", command, DeploymentReply, views=())
    return Data(data=reply.deployments or [])


@get("/{deployment_id:str}", summary="Read a deployment", responses=error_responses(404))
async def get_deployment(
    store: Store,
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
    deployment_id: FromPath[str],
) -> Data[DeploymentView]:
    """Status, current step and percentage, the steps with their times, why it ended, and
    what was measured of the new version."""
    state = None
    if ID.match(deployment_id):
        events = await store.read(deployment_stream(ns, deployment_id))
        state = fold(events, evolve_deployment).state
    if state is None or state.namespace != ns:
        raise _not_found(deployment_id, ns)
    shown = deployment_view(state)
    if state.active:
        shown.metrics = await _measured(writes, ns, deployment_id, shown.metrics)
    return Data(data=shown)


async def _measured(
    writes: Writes, ns: str, deployment_id: str, judged: list[VersionMetrics]
) -> list[VersionMetrics]:
    """The new version's figures as the deployment service measures them now; those it was
    judged on when the service does not answer in time (the stream still shows the rest)."""
    command = ListDeployments(namespace=ns, deployment_id=deployment_id)
    try:
        reply = await writes.send(
            SERVICE, "list_deployments", command, DeploymentReply, views=(), within=_METRICS_S
        )
    except ParleyError:
        return judged
    return next((d.metrics for d in reply.deployments or []), judged)


@post(
    "/{deployment_id:str}/{action:str}",
    status_code=200,
    summary="Promote, pause, resume or roll back a deployment",
    description="`promote` skips to 100 %; `pause` stops the stage clock, `resume` restarts"
    " it; `rollback` sends all traffic back to the old version (give a `reason`).",
    responses=error_responses(404, 409, 422, 503, 504),
)
async def act_on_deployment(
    request: Request[Any, Any, Any],
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
    deployment_id: FromPath[str],
    action: FromPath[str],
) -> Data[DeploymentView]:
    """Steer a running deployment by hand."""
    if action not in ("promote", "pause", "resume", "rollback"):
        raise _not_found(deployment_id, ns)
    if not ID.match(deployment_id):
        raise _not_found(deployment_id, ns)
    body = await decode_body(request, ActionBody, optional=True)
    chosen: _Action = action  # type: ignore[assignment]
    command = DeploymentAction(
        namespace=ns, deployment_id=deployment_id, action=chosen, reason=body.reason
    )
    reply = await writes.send(SERVICE, "deployment_action", command, DeploymentReply, views=())
    return Data(data=_shown(reply))


class ReloadBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `PUT /agents/{id}/reload` (JSON, or the same fields as multipart form fields)."""

    config: Annotated[str, Meta(max_length=200_000)] | None = None
    """The new definition as TOML; or give `spec`."""
    spec: AgentSpec | None = None
    strategy: Strategy = "immediate"
    traffic_split: Annotated[int, Meta(ge=1, le=99)] = 10
    """A canary's share of traffic on the new version before it goes to 100 %."""
    duration_s: Annotated[float, Meta(ge=0, le=7 * 86400)] = 300.0
    """How long a canary stays at `traffic_split`."""
    version_label: Annotated[str, Meta(min_length=1, max_length=64)] = "reload"


@put(
    "/{agent_id:str}/reload",
    status_code=202,
    summary="Hot-reload an agent (starts a deployment)",
    description="A shorthand for `POST /deployments`: the new definition as `config` (TOML) or"
    " `spec`, in a JSON body or as form fields (multipart, where `config` may be a file,"
    " or urlencoded);"
    " `strategy` `immediate` (default), `canary`, which runs `traffic_split` % for"
    " `duration_s`, then promotes, `blue_green` (its default window) or `rolling` (one"
    " instance at a time).",
    opt={"body": ReloadBody},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def reload_agent(
    request: Request[Any, Any, Any],
    agents: NamedDependency[AgentsProjection],
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
    agent_id: FromPath[str],
) -> Response[Data[DeploymentView]]:
    """Start a deployment of the agent's new definition."""
    if request.content_type[0].lower() in _FORMS:
        body = await _form(request)
    else:
        body = await decode_body(request, ReloadBody)
    stages = [
        Stage(percentage=body.traffic_split, duration_s=body.duration_s),
        Stage(percentage=100),
    ]
    deployment = DeploymentBody(
        agent_id=agent_id,
        version_label=body.version_label,
        spec=body.spec,
        config=body.config,
        strategy=body.strategy,
        stages=stages if body.strategy == "canary" else [],
        batch_size=1 if body.strategy == "rolling" else None,
    )
    return await _start(deployment, agents, writes, ns, [])


async def _form(request: Request[Any, Any, Any]) -> ReloadBody:
    """A multipart reload: its fields (a file's content as text) as a :class:`ReloadBody`."""
    fields: dict[str, Any] = {}
    for name, value in (await request.form()).multi_items():
        if isinstance(value, UploadFile):
            raw = await value.read()
            try:
                fields[name] = raw.decode()
            except UnicodeDecodeError:
                raise invalid(f"body.{name}", "the file is not UTF-8 text") from None
        else:
            fields[name] = value
    try:
        return msgspec.convert(fields, ReloadBody, strict=False)
    except msgspec.ValidationError as exc:
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR, f"invalid body: {exc}", field_errors(exc, "body")
        ) from None


def _shown(reply: DeploymentReply) -> DeploymentView:
    if reply.deployment is None:  # pragma: no cover - every command replies with it
        raise ParleyError(ErrorCode.INTERNAL_ERROR, "internal error")
    return reply.deployment


def _not_found(deployment_id: str, namespace: str) -> ParleyError:
    code = ErrorCode.DEPLOYMENT_NOT_FOUND
    return not_found(code, "deployment", "deployment_id", deployment_id, namespace)


deployment_router = Router(
    path="/api/v1/deployments",
    route_handlers=[create_deployment, list_deployments, get_deployment, act_on_deployment],
    tags=["deployments"],
)
"""`POST/GET /deployments`, `GET /deployments/{id}`, `POST /deployments/{id}/<action>`."""

reload_router = Router(path="/api/v1/agents", route_handlers=[reload_agent], tags=["agents"])
"""`PUT /agents/{id}/reload`."""
