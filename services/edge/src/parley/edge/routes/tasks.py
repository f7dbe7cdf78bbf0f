"""Tasks (FIPA Contract Net) and cluster group runs.

`POST /tasks` records a task; `/distribute` puts it out to tender (202: the round runs on;
with `"wait": true`, 200 once it is awarded or failed); `GET` shows the proposals, the
winning bid, progress and the result. `POST /clusters/{name}/runs` starts a group run over
the cluster's agents (202), `GET .../runs/{id}` shows each agent's part and the result.
"""

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts import tasks
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import Budget
from parley.contracts.tasks import (
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
from parley.edge._paging import page_by_key
from parley.edge.body import decode_body
from parley.edge.errors import ApiError
from parley.edge.projections.tasks import RunView, TaskView
from parley.edge.request_ids import request_id
from parley.edge.routes._runtime import error_responses
from parley.edge.routes.agents import provide_namespace
from parley.edge.schemas import Pagination

__all__ = ["run_router", "task_router"]

AgentId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_STATUSES = ("created", "announced", "awarded", "completed", "failed", "cancelled")
_WAIT_SLACK_S = 6.0


class CreateTaskBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /tasks`."""

    name: Annotated[str, Meta(min_length=1, max_length=256)]
    description: Annotated[str, Meta(max_length=10_000)] = ""
    data: Any = None
    """What the task works on."""
    participants: Annotated[list[AgentId], Meta(max_length=1000)] = []
    """Agent ids to tender to; otherwise `requirements` pick the candidates."""
    requirements: Requirements | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=86_400)] = 300
    """How long the awarded agent has to report a result (then the next bid gets it)."""
    protocol: Literal["contract_net"] = "contract_net"
    task_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
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


class TaskResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}`."""

    data: TaskView


class TaskList(msgspec.Struct, kw_only=True):
    """A page of tasks, oldest first."""

    data: list[TaskView]
    pagination: Pagination


class RunResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}`."""

    data: RunView


# --- helpers -----------------------------------------------------------------------------


async def _send(
    request: Request[Any, Any, Any],
    state: State,
    verb: str,
    command: msgspec.Struct,
    *,
    within: float | None = None,
) -> TaskReply:
    """Send a tasks command; wait until the tasks projection shows its effect."""
    reply: TaskReply = await state.commands.request(
        tasks.SERVICE,
        verb,
        command,
        TaskReply,
        request_id=request_id(request.scope),
        traceparent=request.headers.get("traceparent"),
        within=within,
    )
    if not await state.tasks.wait_for(reply.position, state.settings.read_your_writes_timeout):
        raise ApiError(
            ErrorCode.TIMEOUT,
            "the change was recorded but is not visible yet; read the resource again shortly",
            {"position": reply.position, "version": reply.version},
        )
    return reply


def _task(state: State, ns: str, task_id: str) -> TaskView:
    view = state.tasks.task(ns, task_id)
    if view is None:
        raise ApiError(
            ErrorCode.TASK_NOT_FOUND,
            f"no task {task_id[:64]} in namespace {ns}",
            {"task_id": task_id[:64]},
        )
    return view  # type: ignore[no-any-return]


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        ErrorCode.VALIDATION_ERROR,
        f"invalid {field}: {message}",
        [{"field": field, "message": message}],
    )


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
    request: Request[Any, Any, Any], state: State, ns: str
) -> Response[TaskResponse]:
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
    reply = await _send(
        request, state, "create_task", CreateTask(namespace=ns, spec=spec, task_id=body.task_id)
    )
    task_id = reply.task_id or ""
    return Response(
        TaskResponse(data=_task(state, ns, task_id)),
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
    request: Request[Any, Any, Any], state: State, ns: str, task_id: str
) -> Response[TaskResponse]:
    """Put the task out to tender."""
    _task(state, ns, task_id)
    body = await decode_body(request, DistributeBody, optional=True)
    command = DistributeTask(
        namespace=ns,
        task_id=task_id,
        strategy=body.strategy,
        max_wait_seconds=body.max_wait_seconds,
        wait=body.wait,
        min_position=state.projection.applied_position,
    )
    within = body.max_wait_seconds + _WAIT_SLACK_S if body.wait else None
    await _send(request, state, "distribute_task", command, within=within)
    return Response(
        TaskResponse(data=_task(state, ns, task_id)), status_code=200 if body.wait else 202
    )


@get("/", summary="List tasks", responses=error_responses(400, 422))
async def list_tasks(
    state: State,
    ns: str,
    status: Annotated[
        str | None, Parameter(required=False, description=", ".join(_STATUSES) + ".")
    ] = None,
    assigned_to: Annotated[
        str | None, Parameter(required=False, description="The awarded agent's id.")
    ] = None,
    name: Annotated[str | None, Parameter(required=False, description="Exact name.")] = None,
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> TaskList:
    """A page of the namespace's tasks, oldest first."""
    if status is not None and status not in _STATUSES:
        raise _invalid("query.status", "expected one of " + ", ".join(_STATUSES))
    views = [
        v
        for v in state.tasks.tasks(ns)
        if (status is None or v.status == status)
        and (assigned_to is None or v.assigned_to == assigned_to)
        and (name is None or v.name == name)
    ]
    page, pagination = page_by_key(
        views, lambda v: f"{v.created_at}\x00{v.task_id}", limit=limit, cursor=cursor
    )
    return TaskList(data=page, pagination=pagination)


@get("/{task_id:str}", summary="Read a task", responses=error_responses(404))
async def get_task(state: State, ns: str, task_id: str) -> TaskResponse:
    """Status, candidates, proposals, the winning bid, progress, result and events."""
    return TaskResponse(data=_task(state, ns, task_id))


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
    request: Request[Any, Any, Any], state: State, ns: str, task_id: str
) -> TaskResponse:
    """Cancel the task."""
    _task(state, ns, task_id)
    body = await decode_body(request, CancelBody, optional=True)
    await _send(
        request, state, "cancel_task", CancelTask(namespace=ns, task_id=task_id, reason=body.reason)
    )
    return TaskResponse(data=_task(state, ns, task_id))


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
    request: Request[Any, Any, Any], state: State, ns: str, name: str
) -> Response[RunResponse]:
    """Start a run over the cluster's agents."""
    cluster = state.clusters.get(ns, name) if len(name) <= 63 else None
    agent_ids = state.clusters.agent_ids(ns, name) if cluster is not None else None
    if cluster is None or agent_ids is None:
        raise ApiError(
            ErrorCode.CLUSTER_NOT_FOUND,
            f"no cluster {name[:64]!r} in namespace {ns}",
            {"name": name[:64]},
        )
    body = await decode_body(request, RunBody)
    spec = cluster.manifest.spec
    live = [a for a in agent_ids if state.projection.get(ns, a) is not None]
    if not live:
        raise _invalid("cluster", f"cluster {name} has no agents")
    command = StartRun(
        namespace=ns,
        cluster=name,
        agent_ids=live,
        input=body.input,
        strategy=body.strategy or spec.strategy,
        budget=body.budget or spec.budget,
        timeout_seconds=body.timeout_seconds,
        min_position=state.projection.applied_position,
    )
    reply = await _send(request, state, "start_run", command)
    run_id = reply.run_id or ""
    view = state.tasks.run(ns, name, run_id)
    if view is None:  # pragma: no cover - the wait above makes it visible
        raise ApiError(ErrorCode.TIMEOUT, "the run started but is not visible yet")
    return Response(
        RunResponse(data=view),
        status_code=202,
        headers={"Location": f"/api/v1/clusters/{name}/runs/{run_id}"},
    )


@get("/{name:str}/runs/{run_id:str}", summary="Read a group run", responses=error_responses(404))
async def get_run(state: State, ns: str, name: str, run_id: str) -> RunResponse:
    """Each agent's part (input, output, error) and the run's result."""
    view = state.tasks.run(ns, name, run_id)
    if view is None:
        raise ApiError(
            ErrorCode.RUN_NOT_FOUND,
            f"cluster {name[:64]} has no run {run_id[:64]}",
            {"run_id": run_id[:64]},
        )
    return RunResponse(data=view)


task_router = Router(
    path="/api/v1/tasks",
    route_handlers=[create_task, distribute_task, list_tasks, get_task, cancel_task],
    dependencies={"ns": Provide(provide_namespace)},
    tags=["tasks"],
)
"""The task routes (Contract Net)."""

run_router = Router(
    path="/api/v1/clusters",
    route_handlers=[start_run, get_run],
    dependencies={"ns": Provide(provide_namespace)},
    tags=["clusters"],
)
"""`POST /clusters/{name}/runs`, `GET /clusters/{name}/runs/{id}`."""
