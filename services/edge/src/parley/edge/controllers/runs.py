"""Group runs of a cluster: `POST /clusters/{name}/runs` starts one over the cluster's agents
(202), `GET .../runs/{id}` shows each agent's part and the result."""

from typing import Annotated
from typing import Any

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.registry import Budget
from parley.contracts.tasks import GroupStrategy
from parley.contracts.tasks import StartRun
from parley.edge.controllers.clusters import cluster_not_found
from parley.edge.controllers.tasks import TASKS
from parley.edge.controllers.tasks import Tasks
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import created
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.edge.projections.tasks import RunView

__all__ = ["MAX_RUN_INPUT_BYTES", "RunBody", "run_router"]

MAX_RUN_INPUT_BYTES = 262_144
"""Largest run ``input``, as JSON: a quarter of the 1 MiB one event holds, as the run's
events carry it to each agent and its result gathers what they make of it (larger: 413)."""


class RunBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /clusters/{name}/runs`."""

    input: Any
    """What the agents work on (a list is split over the mappers of a `map-reduce`)."""
    strategy: GroupStrategy | None = None
    """`parallel`, `map-reduce`, `pipeline`, `race`; default the cluster's."""
    budget: Budget | None = None
    """Checked against the usage agents report; default the cluster's."""
    timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] = 120


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
async def start_run(task: NamedDependency[Tasks], name: FromPath[str]) -> Response[Data[RunView]]:
    """Start a run over the cluster's agents."""
    ns, agents, clusters = task.ns, task.edge.agents, task.edge.clusters
    cluster = clusters.get(ns, name) if len(name) <= 63 else None
    agent_ids = clusters.agent_ids(ns, name) if cluster is not None else None
    if cluster is None or agent_ids is None:
        raise cluster_not_found(name, ns)
    body = await task.body(RunBody)
    _check_size(body.input)
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
        min_position=task.edge.positions.runtime,
    )
    reply = await task.run("start_run", command)
    run_id = reply.run_id or ""
    view = task.edge.tasks.run(ns, name, run_id)
    if view is None:  # pragma: no cover - the wait above makes it visible
        raise ApiError(ErrorCode.TIMEOUT, "the run started but is not visible yet")
    return created(view, f"/api/v1/clusters/{name}/runs/{run_id}", 202)


def _check_size(value: Any) -> None:
    """Refuse an input too large for the run's events (``413 PAYLOAD_TOO_LARGE``)."""
    size = len(msgspec.json.encode(value))
    if size > MAX_RUN_INPUT_BYTES:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the run's input is {size} bytes as JSON; the limit is {MAX_RUN_INPUT_BYTES} bytes",
            {"field": "body.input", "size": size, "limit": MAX_RUN_INPUT_BYTES},
        )


@get("/{name:str}/runs/{run_id:str}", summary="Read a group run", responses=error_responses(404))
async def get_run(
    task: NamedDependency[Tasks], name: FromPath[str], run_id: FromPath[str]
) -> Data[RunView]:
    """Each agent's part (input, output, error) and the run's result."""
    view = task.edge.tasks.run(task.ns, name, run_id)
    if view is None:
        raise ApiError(
            ErrorCode.RUN_NOT_FOUND,
            f"cluster {name[:64]} has no run {run_id[:64]}",
            {"run_id": run_id[:64]},
        )
    return Data(data=view)


run_router = Router(
    path="/api/v1/clusters",
    route_handlers=[start_run, get_run],
    dependencies=TASKS,
    tags=["clusters"],
)
"""`POST /clusters/{name}/runs`, `GET /clusters/{name}/runs/{id}`."""
