"""Executions of an agent: `/webhook`, `/executions`, `/output`, `/logs`, and its metrics.

A webhook queues a durable execution (`202` with `Location`); its progress, output, log and
metrics are read from the runtime projection.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import (
    CancelExecution,
    ExecutionInput,
    ExecutionOptions,
    TriggerExecution,
)
from parley.edge.controllers.lookups import require_agent, require_execution
from parley.edge.dependencies import Writes
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data, Page
from parley.edge.http.errors import ApiError, error_responses, invalid
from parley.edge.http.paging import page_by_key
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.runtime_views import AgentMetrics, ExecutionView, LogEntry, LogLevel

__all__ = ["execution_router", "metrics_router"]

PREFIX = "/api/v1/agents"
_STATUSES = ("queued", "running", "input_required", "completed", "failed", "cancelled")
_TRIGGERS = ("webhook", "periodic", "manual")


class WebhookBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /agents/{id}/webhook` (optional)."""

    input_data: dict[str, Any] = {}
    """What the execution works on, given to the model as data."""
    execution_options: ExecutionOptions | None = None
    """`timeout_seconds`, `max_attempts`, `retry_backoff_seconds`."""


class InputBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST .../executions/{id}/input`: the answer to an approval request."""

    approved: bool = True
    response: Annotated[str, Meta(max_length=100_000)] | None = None
    """Given to the model as the tool's result instead of running the tool."""


class Queued(msgspec.Struct, kw_only=True):
    """A queued execution."""

    execution_id: str
    status: Literal["queued"] = "queued"


class Output(msgspec.Struct, kw_only=True):
    """An execution's result."""

    execution_id: str
    status: str
    output: str | None
    error: dict[str, Any] | None
    finished_at: str | None


@post(
    "/{agent_id:str}/webhook",
    status_code=202,
    summary="Trigger an execution",
    description="Queues a durable execution; poll `Location` for its progress.",
    opt={"body": WebhookBody, "body_optional": True},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 503, 504),
)
async def webhook(
    request: Request[Any, Any, Any],
    agents: AgentsProjection,
    writes: Writes,
    ns: str,
    agent_id: str,
) -> Response[Data[Queued]]:
    """Queue an execution of the agent with `input_data`."""
    require_agent(agents, ns, agent_id)
    body = await decode_body(request, WebhookBody, optional=True)
    command = TriggerExecution(
        namespace=ns,
        agent_id=agent_id,
        input_data=body.input_data,
        options=body.execution_options or ExecutionOptions(),
        trigger="webhook",
        min_position=agents.applied_position,
    )
    reply = await writes.runtime("trigger_execution", command)
    execution_id = reply.execution_id or ""
    return Response(
        Data(data=Queued(execution_id=execution_id)),
        status_code=202,
        headers={"Location": f"{PREFIX}/{agent_id}/executions/{execution_id}"},
    )


@get(
    "/{agent_id:str}/executions",
    summary="List an agent's executions",
    responses=error_responses(400, 404, 422),
)
async def list_executions(
    agents: AgentsProjection,
    runtime: RuntimeProjection,
    ns: str,
    agent_id: str,
    status: Annotated[
        str | None, Parameter(required=False, description=", ".join(_STATUSES) + ".")
    ] = None,
    trigger: Annotated[
        str | None, Parameter(required=False, description=", ".join(_TRIGGERS) + ".")
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> Page[ExecutionView]:
    """A page of the agent's executions, oldest first."""
    require_agent(agents, ns, agent_id)
    if status is not None and status not in _STATUSES:
        raise invalid("query.status", "expected one of " + ", ".join(_STATUSES))
    if trigger is not None and trigger not in _TRIGGERS:
        raise invalid("query.trigger", "expected one of " + ", ".join(_TRIGGERS))
    views = runtime.executions(
        ns,
        agent_id,
        lambda v: (
            (status is None or v.status == status) and (trigger is None or v.trigger == trigger)
        ),
    )
    return page_by_key(views, lambda v: f"{v.created_at}\x00{v.id}", limit=limit, cursor=cursor)


@get(
    "/{agent_id:str}/executions/{execution_id:str}",
    summary="Read an execution",
    responses=error_responses(404),
)
async def get_execution(
    agents: AgentsProjection, runtime: RuntimeProjection, ns: str, agent_id: str, execution_id: str
) -> Data[ExecutionView]:
    """Status, steps, output, usage and any pending input of one execution."""
    require_agent(agents, ns, agent_id)
    return Data(data=require_execution(runtime, ns, agent_id, execution_id))


@post(
    "/{agent_id:str}/executions/{execution_id:str}/input",
    status_code=200,
    summary="Answer an execution waiting for input",
    description="`409 INPUT_NOT_EXPECTED` unless the execution is in `input_required`.",
    opt={"body": InputBody, "body_optional": True},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def execution_input(
    request: Request[Any, Any, Any],
    agents: AgentsProjection,
    runtime: RuntimeProjection,
    writes: Writes,
    ns: str,
    agent_id: str,
    execution_id: str,
) -> Data[ExecutionView]:
    """Approve or deny the pending tool call, optionally with a response."""
    require_agent(agents, ns, agent_id)
    require_execution(runtime, ns, agent_id, execution_id)
    body = await decode_body(request, InputBody, optional=True)
    command = ExecutionInput(
        namespace=ns,
        agent_id=agent_id,
        execution_id=execution_id,
        approved=body.approved,
        response=body.response,
    )
    await writes.runtime("execution_input", command)
    return Data(data=require_execution(runtime, ns, agent_id, execution_id))


@post(
    "/{agent_id:str}/executions/{execution_id:str}/cancel",
    status_code=200,
    summary="Cancel an execution",
    responses=error_responses(404, 409, 503, 504),
)
async def cancel_execution(
    agents: AgentsProjection,
    runtime: RuntimeProjection,
    writes: Writes,
    ns: str,
    agent_id: str,
    execution_id: str,
) -> Data[ExecutionView]:
    """Cancel a queued, running or waiting execution."""
    require_agent(agents, ns, agent_id)
    require_execution(runtime, ns, agent_id, execution_id)
    command = CancelExecution(namespace=ns, agent_id=agent_id, execution_id=execution_id)
    await writes.runtime("cancel_execution", command)
    return Data(data=require_execution(runtime, ns, agent_id, execution_id))


@get(
    "/{agent_id:str}/output",
    summary="Read an agent's latest output",
    description="The latest completed execution's output, or `execution_id`'s.",
    responses=error_responses(404),
)
async def agent_output(
    agents: AgentsProjection,
    runtime: RuntimeProjection,
    ns: str,
    agent_id: str,
    execution_id: Annotated[str | None, Parameter(required=False)] = None,
) -> Data[Output]:
    """An execution's output."""
    require_agent(agents, ns, agent_id)
    view: ExecutionView | None
    if execution_id is not None:
        view = require_execution(runtime, ns, agent_id, execution_id)
    else:
        view = runtime.latest_output(ns, agent_id)
        if view is None:
            raise ApiError(
                ErrorCode.EXECUTION_NOT_FOUND,
                f"agent {agent_id} has no completed execution yet",
                {"agent_id": agent_id},
            )
    return Data(
        data=Output(
            execution_id=view.id,
            status=view.status,
            output=view.output,
            error=view.error,
            finished_at=view.finished_at,
        )
    )


@get(
    "/{agent_id:str}/logs",
    summary="Read an agent's log",
    description="Lines derived from the agent's events: turns, executions, tools, budget and"
    " instances. `level` is the minimum (`info`, `warning`, `error`).",
    responses=error_responses(404, 422),
)
async def agent_logs(
    agents: AgentsProjection,
    runtime: RuntimeProjection,
    ns: str,
    agent_id: str,
    level: Annotated[str, Parameter(description="`info`, `warning` or `error`.")] = "info",
    since: Annotated[
        str | None, Parameter(required=False, description="ISO-8601 time (inclusive).")
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="Newest lines to return.")] = 100,
) -> Data[list[LogEntry]]:
    """The newest log lines, oldest first."""
    require_agent(agents, ns, agent_id)
    if level not in ("info", "warning", "error"):
        raise invalid("query.level", "expected info, warning or error")
    after = None
    if since is not None:
        try:
            after = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
        except ValueError:
            raise invalid("query.since", "expected an ISO-8601 time") from None
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
    chosen: LogLevel = level  # type: ignore[assignment]
    return Data(data=runtime.logs(agent_id, level=chosen, since=after, limit=limit))


@get(
    "/{agent_id:str}",
    summary="Read an agent's metrics",
    description="Requests (finished turns and executions), success rate, average response"
    " time, active conversations (a turn in the last 15 minutes), tokens, cost, budget and"
    " warm instances.",
    responses=error_responses(404),
)
async def agent_metrics(
    agents: AgentsProjection, runtime: RuntimeProjection, ns: str, agent_id: str
) -> Data[AgentMetrics]:
    """One agent's metrics."""
    require_agent(agents, ns, agent_id)
    return Data(data=runtime.metrics(agent_id))


execution_router = Router(
    path=PREFIX,
    route_handlers=[
        webhook,
        list_executions,
        get_execution,
        execution_input,
        cancel_execution,
        agent_output,
        agent_logs,
    ],
    tags=["executions"],
)
"""The execution, output and log routes of agents."""

metrics_router = Router(
    path="/api/v1/metrics/agents",
    route_handlers=[agent_metrics],
    tags=["metrics"],
)
"""`GET /api/v1/metrics/agents/{id}`."""
