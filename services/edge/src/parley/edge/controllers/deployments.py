"""Deployments: `POST /deployments` rolls a new definition of an agent out (202) — or a
cluster's new template through its agents —, `GET /deployments` and `GET /deployments/{id}`
show them, `POST /deployments/{id}/promote|pause|resume|rollback` steer one by hand, and
`PUT /agents/{id}/reload` is a shorthand that starts one. The deployment service decides;
this module checks the request first (422 with field errors, 404 for an unknown agent or
cluster) and reads a deployment from its stream, folded by the deployment aggregate."""

from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar import put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from litestar.params import QueryParameter
from msgspec import Meta

from parley.aggregates.agent_spec import validate_spec
from parley.aggregates.deployment import evolve as evolve_deployment
from parley.aggregates.deployment_strategies import check_rollout
from parley.aggregates.deployment_view import view as deployment_view
from parley.contracts.agent_toml import TomlAgentError
from parley.contracts.agent_toml import agent_spec_from_toml
from parley.contracts.deployments import SERVICE
from parley.contracts.deployments import CreateDeployment
from parley.contracts.deployments import DeploymentAction
from parley.contracts.deployments import DeploymentReply
from parley.contracts.deployments import DeploymentStatus
from parley.contracts.deployments import DeploymentView
from parley.contracts.deployments import ListDeployments
from parley.contracts.deployments import Rollout
from parley.contracts.deployments import Stage
from parley.contracts.deployments import Strategy
from parley.contracts.deployments import VersionMetrics
from parley.contracts.deployments import deployment_stream
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec
from parley.edge.controllers.clusters import cluster_not_found
from parley.edge.controllers.lookups import ID
from parley.edge.controllers.lookups import require_agent
from parley.edge.controllers.resources import Resource
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.edge.http.errors import invalid_fields
from parley.edge.http.errors import not_found
from parley.eventstore.follower import Follower
from parley.eventstore.repository import fold

__all__ = ["DeploymentBody", "DeploymentOps", "ReloadBody", "deployment_router", "reload_router"]

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
            raise invalid_fields(exc, "body.config") from None
        except (TomlAgentError, ValueError, RecursionError) as exc:
            raise invalid("body.config", f"malformed TOML: {exc}") from None
    validate_spec(spec)
    return spec


class DeploymentOps(Resource[DeploymentView, DeploymentReply]):
    """The deployment routes' reads and writes (one per request, from its dependencies).

    A deployment is read from its stream (folded by the deployment aggregate), not from a
    projection; its commands are answered by the deployment service without a view to wait for.
    """

    service, reply = SERVICE, DeploymentReply

    def views(self) -> tuple[Follower, ...]:
        return ()

    def missing(self, key: str, namespace: str) -> ParleyError:
        return not_found(
            ErrorCode.DEPLOYMENT_NOT_FOUND, "deployment", "deployment_id", key, namespace
        )

    async def read(self, deployment_id: str) -> DeploymentView:
        """The deployment as its stream has it (its figures as measured now while it runs),
        or ``404 DEPLOYMENT_NOT_FOUND``."""
        state = None
        if ID.match(deployment_id):
            events = await self.edge.store.read(deployment_stream(self.ns, deployment_id))
            state = fold(events, evolve_deployment).state
        if state is None or state.namespace != self.ns:
            raise self.missing(deployment_id, self.ns)
        shown = deployment_view(state)
        if state.active:
            shown.metrics = await self._measured(deployment_id, shown.metrics)
        return shown

    async def _measured(
        self, deployment_id: str, judged: list[VersionMetrics]
    ) -> list[VersionMetrics]:
        """The new version's figures as the deployment service measures them now; those it was
        judged on when the service does not answer in time (the stream still shows the rest)."""
        command = ListDeployments(namespace=self.ns, deployment_id=deployment_id)
        try:
            reply = await self.run("list_deployments", command, within=_METRICS_S)
        except ParleyError:
            return judged
        return next((d.metrics for d in reply.deployments or []), judged)

    async def start(
        self, body: DeploymentBody, members: list[str]
    ) -> Response[Data[DeploymentView]]:
        """Check ``body`` (definition, rollout, agent), then start it: `202` with its view."""
        if (body.agent_id is None) == (body.cluster is None):
            raise invalid("body.agent_id", "name an `agent_id` or a `cluster`, not both")
        spec = _definition(body)
        check_rollout(body, cluster=body.cluster is not None)
        if body.agent_id is not None:
            require_agent(self.edge.agents, self.ns, body.agent_id)
        command = CreateDeployment(
            namespace=self.ns,
            agent_id=body.agent_id,
            cluster=body.cluster,
            agent_ids=members,
            spec=spec,
            version_label=body.version_label,
            rollout=Rollout(**{f: getattr(body, f) for f in Rollout.__struct_fields__}),
        )
        view = _shown(await self.run("create_deployment", command))
        return Response(
            Data(data=view),
            status_code=202,
            headers={"Location": f"/api/v1/deployments/{view.id}"},
        )

    def members(self, body: DeploymentBody) -> list[str]:
        """The live agents of the cluster ``body`` names, in its order (404, or 422 when it
        was declared without a template)."""
        cluster = self.edge.clusters.get(self.ns, body.cluster or "")
        if cluster is None:
            raise cluster_not_found(body.cluster or "", self.ns)
        if cluster.manifest.spec.template is None:
            raise invalid("body.cluster", f"cluster {cluster.name} has no template to change")
        return [a for a in cluster.agent_ids if self.edge.agents.get(self.ns, a) is not None]


_START_ERRORS = error_responses(400, 404, 409, 413, 415, 422, 503, 504)
"""What starting a deployment may answer (`POST /deployments`, `PUT /agents/{id}/reload`)."""


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
    responses=_START_ERRORS,
)
async def create_deployment(ops: NamedDependency[DeploymentOps]) -> Response[Data[DeploymentView]]:
    """Check the request, then have the deployment service start the rollout."""
    body = await ops.body(DeploymentBody)
    return await ops.start(body, ops.members(body) if body.cluster is not None else [])


@get("/", summary="List deployments", responses=error_responses(422, 503))
async def list_deployments(
    ops: NamedDependency[DeploymentOps],
    agent_id: Annotated[str | None, QueryParameter(required=False)] = None,
    status: Annotated[DeploymentStatus | None, QueryParameter(required=False)] = None,
) -> Data[list[DeploymentView]]:
    """The namespace's deployments, newest first (of one agent, or one status, if asked)."""
    command = ListDeployments(namespace=ops.ns, agent_id=agent_id, status=status)
    return Data(data=(await ops.run("list_deployments", command)).deployments or [])


@get("/{deployment_id:str}", summary="Read a deployment", responses=error_responses(404))
async def get_deployment(
    ops: NamedDependency[DeploymentOps], deployment_id: FromPath[str]
) -> Data[DeploymentView]:
    """Status, current step and percentage, the steps with their times, why it ended, and
    what was measured of the new version."""
    return Data(data=await ops.read(deployment_id))


@post(
    "/{deployment_id:str}/{action:str}",
    status_code=200,
    summary="Promote, pause, resume or roll back a deployment",
    description="`promote` skips to 100 %; `pause` stops the stage clock, `resume` restarts"
    " it; `rollback` sends all traffic back to the old version (give a `reason`).",
    responses=error_responses(404, 409, 422, 503, 504),
)
async def act_on_deployment(
    ops: NamedDependency[DeploymentOps], deployment_id: FromPath[str], action: FromPath[str]
) -> Data[DeploymentView]:
    """Steer a running deployment by hand."""
    if action not in ("promote", "pause", "resume", "rollback"):
        raise ops.missing(deployment_id, ops.ns)
    if not ID.match(deployment_id):
        raise ops.missing(deployment_id, ops.ns)
    body = await ops.body(ActionBody, optional=True)
    chosen: _Action = action  # type: ignore[assignment]
    command = DeploymentAction(
        namespace=ops.ns, deployment_id=deployment_id, action=chosen, reason=body.reason
    )
    return Data(data=_shown(await ops.run("deployment_action", command)))


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
    responses=_START_ERRORS,
)
async def reload_agent(
    ops: NamedDependency[DeploymentOps], agent_id: FromPath[str]
) -> Response[Data[DeploymentView]]:
    """Start a deployment of the agent's new definition."""
    if ops.request.content_type[0].lower() in _FORMS:
        body = await _form(ops)
    else:
        body = await ops.body(ReloadBody)
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
    return await ops.start(deployment, [])


async def _form(ops: DeploymentOps) -> ReloadBody:
    """A multipart reload: its fields (a file's content as text) as a :class:`ReloadBody`."""
    fields: dict[str, Any] = {}
    for name, value in (await ops.request.form()).multi_items():
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
        raise invalid_fields(exc, "body") from None


def _shown(reply: DeploymentReply) -> DeploymentView:
    if reply.deployment is None:  # pragma: no cover - every command replies with it
        raise ParleyError(ErrorCode.INTERNAL_ERROR, "internal error")
    return reply.deployment


_OPS = {"ops": Provide(DeploymentOps, sync_to_thread=False)}


deployment_router = Router(
    path="/api/v1/deployments",
    route_handlers=[create_deployment, list_deployments, get_deployment, act_on_deployment],
    dependencies=_OPS,
    tags=["deployments"],
)
"""`POST/GET /deployments`, `GET /deployments/{id}`, `POST /deployments/{id}/<action>`."""

reload_router = Router(
    path="/api/v1/agents", route_handlers=[reload_agent], dependencies=_OPS, tags=["agents"]
)
"""`PUT /agents/{id}/reload`."""
