"""Tasks (FIPA Contract Net): `/api/v1/tasks`.

`POST /tasks` records a task; `/distribute` puts it out to tender (202: the round runs on;
with `"wait": true`, 200 once it is awarded or failed); `GET` shows the proposals, the
winning bid, progress and the result. Group runs of a cluster are :mod:`.runs`.
"""

from typing import Annotated
from typing import Literal

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import Id
from parley.contracts.tasks import SERVICE
from parley.contracts.tasks import AwardStrategy
from parley.contracts.tasks import CancelTask
from parley.contracts.tasks import CreateTask
from parley.contracts.tasks import DistributeTask
from parley.contracts.tasks import TaskReply
from parley.contracts.tasks import TaskSpec
from parley.edge.controllers.resources import Resource
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import created
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import not_found
from parley.edge.http.paging import Paging
from parley.edge.http.params import ExactName
from parley.edge.http.params import check_one_of
from parley.edge.http.params import one_of
from parley.edge.projections.tasks import TaskView
from parley.eventstore.follower import Follower

__all__ = ["TASKS", "Tasks", "task_router"]

_STATUSES = ("created", "announced", "awarded", "completed", "failed", "cancelled")
_WAIT_SLACK_S = 6.0


class CreateTaskBody(TaskSpec, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /tasks`: the task's definition, and how to create it."""

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


class Tasks(Resource[TaskView, TaskReply]):
    """The task and group-run routes' reads and writes."""

    service, reply = SERVICE, TaskReply

    def views(self) -> tuple[Follower, ...]:
        return (self.edge.tasks,)

    def find(self, key: str, namespace: str) -> TaskView | None:
        return self.edge.tasks.task(namespace, key)

    def missing(self, key: str, namespace: str) -> ParleyError:
        return not_found(ErrorCode.TASK_NOT_FOUND, "task", "task_id", key, namespace)


TASKS = {"task": Provide(Tasks, sync_to_thread=False)}
"""The dependencies of a router of tasks: ``task: Tasks``."""


# --- tasks -------------------------------------------------------------------------------


@post(
    "/",
    status_code=201,
    summary="Create a task",
    description="Records the task (`created`); distribute it to put it out to tender.",
    opt={"body": CreateTaskBody},
    responses=error_responses(400, 409, 413, 415, 422, 503, 504),
)
async def create_task(task: NamedDependency[Tasks]) -> Response[Data[TaskView]]:
    """Create a task with participants or requirements."""
    body = await task.body(CreateTaskBody)
    spec = TaskSpec(**{name: getattr(body, name) for name in TaskSpec.__struct_fields__})
    command = CreateTask(namespace=task.ns, spec=spec, task_id=body.task_id)
    reply = await task.run("create_task", command)
    task_id = reply.task_id or ""
    return created(task.get(task_id), f"/api/v1/tasks/{task_id}")


@post(
    "/{task_id:str}/distribute",
    status_code=202,
    summary="Distribute a task (Contract Net)",
    description="Sends a `cfp` to the candidates and collects bids until `max_wait_seconds` or"
    " until all have answered; then `accept-proposal` to the best bid by `strategy` and"
    " `reject-proposal` to the rest. 202 at once, or 200 with `wait` once it is decided.",
    opt={"body": DistributeBody, "body_optional": True},
    responses={
        200: ResponseSpec(Data[TaskView], description="Decided (with `wait`)."),
        **error_responses(400, 404, 409, 413, 415, 422, 503, 504),
    },
)
async def distribute_task(
    task: NamedDependency[Tasks], task_id: FromPath[str]
) -> Response[Data[TaskView]]:
    """Put the task out to tender."""
    task.get(task_id)
    body = await task.body(DistributeBody, optional=True)
    command = DistributeTask(
        namespace=task.ns,
        task_id=task_id,
        strategy=body.strategy,
        max_wait_seconds=body.max_wait_seconds,
        wait=body.wait,
        min_position=task.edge.positions.tasks,
    )
    within = body.max_wait_seconds + _WAIT_SLACK_S if body.wait else None
    await task.run("distribute_task", command, within=within)
    return Response(Data(data=task.get(task_id)), status_code=200 if body.wait else 202)


@get("/", summary="List tasks", responses=error_responses(400, 422))
async def list_tasks(
    task: NamedDependency[Tasks],
    paging: NamedDependency[Paging],
    status: Annotated[str | None, one_of(_STATUSES)] = None,
    assigned_to: Annotated[
        str | None, Parameter(required=False, description="The awarded agent's id.")
    ] = None,
    name: ExactName = None,
) -> Page[TaskView]:
    """A page of the namespace's tasks, oldest first."""
    status = check_one_of("status", status, _STATUSES)
    views = [
        v
        for v in task.edge.tasks.tasks(task.ns)
        if (status is None or v.status == status)
        and (assigned_to is None or v.assigned_to == assigned_to)
        and (name is None or v.name == name)
    ]
    return paging.page(views, lambda v: f"{v.created_at}\x00{v.task_id}")


@get("/{task_id:str}", summary="Read a task", responses=error_responses(404))
async def get_task(task: NamedDependency[Tasks], task_id: FromPath[str]) -> Data[TaskView]:
    """Status, candidates, proposals, the winning bid, progress, result and events."""
    return Data(data=task.get(task_id))


@post(
    "/{task_id:str}/cancel",
    status_code=200,
    summary="Cancel a task",
    description="The contractor, if the task was awarded, gets a FIPA `cancel`. `409` when"
    " the task has already finished.",
    opt={"body": CancelBody, "body_optional": True},
    responses=error_responses(404, 409, 413, 415, 422, 503, 504),
)
async def cancel_task(task: NamedDependency[Tasks], task_id: FromPath[str]) -> Data[TaskView]:
    """Cancel the task."""
    task.get(task_id)
    body = await task.body(CancelBody, optional=True)
    command = CancelTask(namespace=task.ns, task_id=task_id, reason=body.reason)
    await task.run("cancel_task", command)
    return Data(data=task.get(task_id))


task_router = Router(
    path="/api/v1/tasks",
    route_handlers=[create_task, distribute_task, list_tasks, get_task, cancel_task],
    dependencies=TASKS,
    tags=["tasks"],
)
"""The task routes (Contract Net)."""
