"""Executions of an agent: `/webhook` and `/executions` (read, answer, cancel).

A webhook queues a durable execution (`202` with `Location`); its progress is read from the
runtime projection. An agent's output, log and metrics are :mod:`.observability`.
"""

from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from msgspec import Meta

from parley.aggregates.execution import Execution
from parley.contracts.runtime import CancelExecution
from parley.contracts.runtime import ExecutionInput
from parley.contracts.runtime import ExecutionOptions
from parley.contracts.runtime import TriggerExecution
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import AgentScope
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import error_responses
from parley.edge.http.paging import Paging
from parley.edge.http.params import check_one_of
from parley.edge.http.params import one_of
from parley.edge.projections.runtime_views import T0
from parley.edge.projections.runtime_views import ExecutionView
from parley.edge.projections.runtime_views import execution_view
from parley.edge.views import iso

__all__ = ["InputBody", "Queued", "WebhookBody", "execution_router"]

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


@post(
    "/{agent_id:str}/webhook",
    status_code=202,
    summary="Trigger an execution",
    description="Queues a durable execution; poll `Location` for its progress.",
    opt={"body": WebhookBody, "body_optional": True},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 503, 504),
)
async def webhook(agent: NamedDependency[AgentScope]) -> Response[Data[Queued]]:
    """Queue an execution of the agent with `input_data`."""
    agent.live()
    body = await agent.body(WebhookBody, optional=True)
    command = TriggerExecution(
        namespace=agent.ns,
        agent_id=agent.id,
        input_data=body.input_data,
        options=body.execution_options or ExecutionOptions(),
        trigger="webhook",
        min_position=agent.edge.positions.runtime,
    )
    reply = await agent.writes.runtime("trigger_execution", command)
    execution_id = reply.execution_id or ""
    return Response(
        Data(data=Queued(execution_id=execution_id)),
        status_code=202,
        headers={"Location": f"{PREFIX}/{agent.id}/executions/{execution_id}"},
    )


@get(
    "/{agent_id:str}/executions",
    summary="List an agent's executions",
    responses=error_responses(400, 404, 422),
)
async def list_executions(
    paging: NamedDependency[Paging],
    agent: NamedDependency[AgentScope],
    status: Annotated[str | None, one_of(_STATUSES)] = None,
    trigger: Annotated[str | None, one_of(_TRIGGERS)] = None,
) -> Page[ExecutionView]:
    """A page of the agent's executions, oldest first."""
    agent.live()
    status = check_one_of("status", status, _STATUSES)
    trigger = check_one_of("trigger", trigger, _TRIGGERS)
    found = [
        e
        for e in agent.runtime.execution_states(agent.ns, agent.id)
        if (status is None or e.status == status) and (trigger is None or e.trigger == trigger)
    ]
    return paging.shown(found, _listed, execution_view)


def _listed(e: Execution) -> str:
    """An execution's place in the list (as its view's ``created_at`` and id sort)."""
    return f"{iso(e.created_at or T0)}\x00{e.id}"


@get(
    "/{agent_id:str}/executions/{execution_id:str}",
    summary="Read an execution",
    responses=error_responses(404),
)
async def get_execution(execution: NamedDependency[ExecutionView]) -> Data[ExecutionView]:
    """Status, steps, output, usage and any pending input of one execution."""
    return Data(data=execution)


@post(
    "/{agent_id:str}/executions/{execution_id:str}/input",
    status_code=200,
    summary="Answer an execution waiting for input",
    description="`409 INPUT_NOT_EXPECTED` unless the execution is in `input_required`.",
    opt={"body": InputBody, "body_optional": True},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def execution_input(
    agent: NamedDependency[AgentScope], execution: NamedDependency[ExecutionView]
) -> Data[ExecutionView]:
    """Approve or deny the pending tool call, optionally with a response."""
    body = await agent.body(InputBody, optional=True)
    command = ExecutionInput(
        namespace=agent.ns,
        agent_id=agent.id,
        execution_id=execution.id,
        **msgspec.structs.asdict(body),  # `approved` and `response`, the command's own fields
    )
    await agent.writes.runtime("execution_input", command)
    return Data(data=agent.execution(execution.id))


@post(
    "/{agent_id:str}/executions/{execution_id:str}/cancel",
    status_code=200,
    summary="Cancel an execution",
    responses=error_responses(404, 409, 503, 504),
)
async def cancel_execution(
    agent: NamedDependency[AgentScope], execution: NamedDependency[ExecutionView]
) -> Data[ExecutionView]:
    """Cancel a queued, running or waiting execution."""
    command = CancelExecution(namespace=agent.ns, agent_id=agent.id, execution_id=execution.id)
    await agent.writes.runtime("cancel_execution", command)
    return Data(data=agent.execution(execution.id))


def _execution(agent: NamedDependency[AgentScope], execution_id: FromPath[str]) -> ExecutionView:
    """The execution the path names, of the live agent (``404`` for either, in that order):
    the ``execution`` dependency of the routes under `/executions/{execution_id}`."""
    agent.live()
    return agent.execution(execution_id)


execution_router = Router(
    path=PREFIX,
    route_handlers=[webhook, list_executions, get_execution, execution_input, cancel_execution],
    dependencies={**AGENT_SCOPE, "execution": Provide(_execution, sync_to_thread=False)},
    tags=["executions"],
)
"""The execution routes of agents."""
