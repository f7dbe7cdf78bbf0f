"""Tasks (FIPA Contract Net) and cluster group runs.

`POST /tasks` records a task; `/distribute` puts it out to tender (202: the round runs on;
with `"wait": true`, 200 once it is awarded or failed); `GET` shows the proposals, the
winning bid, progress and the result. `POST /clusters/{name}/runs` starts a group run over
the cluster's agents (202), `GET .../runs/{id}` shows each agent's part and the result.
"""

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import Id
from parley.contracts.registry import Budget
from parley.contracts.tasks import (
    SERVICE,
    AwardStrategy,
    CancelTask,
    CreateTask,
    DistributeTask,
    GroupStrategy,
    Requirements,
    StartRun,
    TaskReply,
    TaskSpec,
)
from parley.edge.controllers.clusters import cluster_not_found
from parley.edge.dependencies import Writes
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data, Page
from parley.edge.http.errors import ApiError, error_responses, invalid
from parley.edge.http.paging import Cursor, Limit, page_by_key
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.edge.projections.tasks import RunView, TasksProjection, TaskView

__all__ = ["run_router", "task_router"]

_STATUSES = ("created", "announced", "awarded", "completed", "failed", "cancelled")
_WAIT_SLACK_S = 6.0


class CreateTaskBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /tasks`."""

    name: Annotated[str, Meta(min_length=1, max_length=256)]
    description: Annotated[str, Meta(max_length=10_000)] = ""
    data: Any = None
    """What the task works on."""
    participants: Annotated[list[Id], Meta(max_length=1000)] = []
    """Agent ids to tender to; otherwise `requirements` pick the candidates."""
    requirements: Requirements | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=86_400)] = 300
    """How long the awarded agent has to report a result (then the next bid gets it)."""
    protocol: Literal["contract_net"] = "contract_net"
    task_id: Id | None = None
    """Chosen by the caller (idempotent creation); a new id otherwise."""


class DistributeBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /tasks/{id}/distribute` (optional)."""

    strategy: AwardStrategy = "best_bid"
    """`best_bid` (weighted cost, time, confidence), `lowest_cost`, `fastest`,
    `highest_confidence`."""
    max_wait_seconds: Annotated[float, Meta(gt=0, le=600)] = 5.0
    """How long bids are taken (the cfp's `reply-by`)."""
    wait: bool = False
    """Answer once the task is awarded or has failed (200) instead of at once (202)."""


class CancelBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /tasks/{id}/cancel` (optional)."""

    reason: Annotated[str, Meta(max_length=1024)] | None = None


class RunBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /clusters/{name}/runs`."""

    input: Any
    """What the agents work on (a list is split over the mappers of a `map-reduce`)."""
    strategy: GroupStrategy | None = None
    """`parallel`, `map-reduce`, `pipeline`, `race`; default the cluster's."""
    budget: Budget | None = None
    """Checked against the usage agents report; default the cluster's."""
    timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] = 120


# --- helpers -----------------------------------------------------------------------------


async def _send(
    writes: Writes,
    tasks: TasksProjection,
    verb: str,
    command: msgspec.Struct,
    *,
    within: float | None = None,
) -> TaskReply:
    """Send a tasks command; wait until the tasks projection shows its effect."""
    return await writes.send(SERVICE, verb, command, TaskReply, views=(tasks,), within=within)


def _task(tasks: TasksProjection, ns: str, task_id: str) -> TaskView:
    view = tasks.task(ns, task_id)
    if view is None:
        raise ApiError(
            ErrorCode.TASK_NOT_FOUND,
            f"no task {task_id[:64]} in namespace {ns}",
            {"task_id": task_id[:64]},
        )
    return view


# --- tasks -------------------------------------------------------------------------------


@post(
    "/",
    status_code=201,
    summary="Create a task",
    description="Records the task (`created`); distribute it to put it out to tender.",
    opt={"body": CreateTaskBody},
    responses=error_responses(400, 409, 413, 415, 422, 503, 504),
)
async def create_task(
    request: Request[Any, Any, Any], tasks: TasksProjection, writes: Writes, ns: str
) -> Response[Data[TaskView]]:
    """Create a task with participants or requirements."""
    body = await decode_body(request, CreateTaskBody)
    spec = TaskSpec(
        name=body.name,
        description=body.description,
        data=body.data,
        participants=body.participants,
        requirements=body.requirements,
        timeout_seconds=body.timeout_seconds,
    )
    command = CreateTask(namespace=ns, spec=spec, task_id=body.task_id)
    reply = await _send(writes, tasks, "create_task", command)
    task_id = reply.task_id or ""
    return Response(
        Data(data=_task(tasks, ns, task_id)),
        status_code=201,
        headers={"Location": f"/api/v1/tasks/{task_id}"},
    )


@post(
    "/{task_id:str}/distribute",
    status_code=202,
    summary="Distribute a task (Contract Net)",
    description="Sends a `cfp` to the candidates and collects bids until `max_wait_seconds` or"
    " until all have answered; then `accept-proposal` to the best bid by `strategy` and"
    " `reject-proposal` to the rest. 202 at once, or 200 with `wait` once it is decided.",
    opt={"body": DistributeBody, "body_optional": True},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def distribute_task(
    request: Request[Any, Any, Any],
    agents: AgentsProjection,
    tasks: TasksProjection,
    writes: Writes,
    ns: str,
    task_id: str,
) -> Response[Data[TaskView]]:
    """Put the task out to tender."""
    _task(tasks, ns, task_id)
    body = await decode_body(request, DistributeBody, optional=True)
    command = DistributeTask(
        namespace=ns,
        task_id=task_id,
        strategy=body.strategy,
        max_wait_seconds=body.max_wait_seconds,
        wait=body.wait,
        min_position=agents.applied_position,
    )
    within = body.max_wait_seconds + _WAIT_SLACK_S if body.wait else None
    await _send(writes, tasks, "distribute_task", command, within=within)
    return Response(Data(data=_task(tasks, ns, task_id)), status_code=200 if body.wait else 202)


@get("/", summary="List tasks", responses=error_responses(400, 422))
async def list_tasks(
    tasks: TasksProjection,
    ns: str,
    status: Annotated[
        str | None, Parameter(required=False, description=", ".join(_STATUSES) + ".")
    ] = None,
    assigned_to: Annotated[
        str | None, Parameter(required=False, description="The awarded agent's id.")
    ] = None,
    name: Annotated[str | None, Parameter(required=False, description="Exact name.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskView]:
    """A page of the namespace's tasks, oldest first."""
    if status is not None and status not in _STATUSES:
        raise invalid("query.status", "expected one of " + ", ".join(_STATUSES))
    views = [
        v
        for v in tasks.tasks(ns)
        if (status is None or v.status == status)
        and (assigned_to is None or v.assigned_to == assigned_to)
        and (name is None or v.name == name)
    ]
    return page_by_key(
        views, lambda v: f"{v.created_at}\x00{v.task_id}", limit=limit, cursor=cursor
    )


@get("/{task_id:str}", summary="Read a task", responses=error_responses(404))
async def get_task(tasks: TasksProjection, ns: str, task_id: str) -> Data[TaskView]:
    """Status, candidates, proposals, the winning bid, progress, result and events."""
    return Data(data=_task(tasks, ns, task_id))


@post(
    "/{task_id:str}/cancel",
    status_code=200,
    summary="Cancel a task",
    description="The contractor, if the task was awarded, gets a FIPA `cancel`. `409` when"
    " the task has already finished.",
    opt={"body": CancelBody, "body_optional": True},
    responses=error_responses(404, 409, 413, 415, 422, 503, 504),
)
async def cancel_task(
    request: Request[Any, Any, Any], tasks: TasksProjection, writes: Writes, ns: str, task_id: str
) -> Data[TaskView]:
    """Cancel the task."""
    _task(tasks, ns, task_id)
    body = await decode_body(request, CancelBody, optional=True)
    command = CancelTask(namespace=ns, task_id=task_id, reason=body.reason)
    await _send(writes, tasks, "cancel_task", command)
    return Data(data=_task(tasks, ns, task_id))


# --- group runs --------------------------------------------------------------------------


@post(
    "/{name:str}/runs",
    status_code=202,
    summary="Start a group run",
    description="Runs the cluster's agents on `input` by a strategy: `parallel` (everyone),"
    " `map-reduce` (≥ 3 agents: the last reduces), `pipeline` (each gets the previous"
    " output), `race` (≥ 2 agents: first result wins, the rest are cancelled).",
    opt={"body": RunBody},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def start_run(
    request: Request[Any, Any, Any],
    agents: AgentsProjection,
    clusters: ClustersProjection,
    tasks: TasksProjection,
    writes: Writes,
    ns: str,
    name: str,
) -> Response[Data[RunView]]:
    """Start a run over the cluster's agents."""
    cluster = clusters.get(ns, name) if len(name) <= 63 else None
    agent_ids = clusters.agent_ids(ns, name) if cluster is not None else None
    if cluster is None or agent_ids is None:
        raise cluster_not_found(name, ns)
    body = await decode_body(request, RunBody)
    spec = cluster.manifest.spec
    live = [a for a in agent_ids if agents.get(ns, a) is not None]
    if not live:
        raise invalid("cluster", f"cluster {name} has no agents")
    command = StartRun(
        namespace=ns,
        cluster=name,
        agent_ids=live,
        input=body.input,
        strategy=body.strategy or spec.strategy,
        budget=body.budget or spec.budget,
        timeout_seconds=body.timeout_seconds,
        min_position=agents.applied_position,
    )
    reply = await _send(writes, tasks, "start_run", command)
    run_id = reply.run_id or ""
    view = tasks.run(ns, name, run_id)
    if view is None:  # pragma: no cover - the wait above makes it visible
        raise ApiError(ErrorCode.TIMEOUT, "the run started but is not visible yet")
    return Response(
        Data(data=view),
        status_code=202,
        headers={"Location": f"/api/v1/clusters/{name}/runs/{run_id}"},
    )


@get("/{name:str}/runs/{run_id:str}", summary="Read a group run", responses=error_responses(404))
async def get_run(tasks: TasksProjection, ns: str, name: str, run_id: str) -> Data[RunView]:
    """Each agent's part (input, output, error) and the run's result."""
    view = tasks.run(ns, name, run_id)
    if view is None:
        raise ApiError(
            ErrorCode.RUN_NOT_FOUND,
            f"cluster {name[:64]} has no run {run_id[:64]}",
            {"run_id": run_id[:64]},
        )
    return Data(data=view)


task_router = Router(
    path="/api/v1/tasks",
    route_handlers=[create_task, distribute_task, list_tasks, get_task, cancel_task],
    tags=["tasks"],
)
"""The task routes (Contract Net)."""

run_router = Router(
    path="/api/v1/clusters",
    route_handlers=[start_run, get_run],
    tags=["clusters"],
)
"""`POST /clusters/{name}/runs`, `GET /clusters/{name}/runs/{id}`."""
