"""What an agent did: `/agents/{id}/output`, `/agents/{id}/logs` and `/metrics/agents/{id}`,
read from the runtime projection."""

from datetime import UTC
from datetime import datetime
from typing import Annotated
from typing import Any

import msgspec
from litestar import Router
from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import AgentScope
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.edge.http.params import one_of
from parley.edge.projections.runtime_views import AgentMetrics
from parley.edge.projections.runtime_views import ExecutionView
from parley.edge.projections.runtime_views import LogEntry
from parley.edge.projections.runtime_views import LogLevel
from parley.edge.views import as_view

__all__ = ["Output", "metrics_router", "output_router"]


class Output(msgspec.Struct, kw_only=True):
    """An execution's result."""

    execution_id: str
    status: str
    output: str | None
    error: dict[str, Any] | None
    finished_at: str | None


@get(
    "/{agent_id:str}/output",
    summary="Read an agent's latest output",
    description="The latest completed execution's output, or `execution_id`'s.",
    responses=error_responses(404),
)
async def agent_output(
    agent: NamedDependency[AgentScope],
    execution_id: Annotated[str | None, Parameter(required=False)] = None,
) -> Data[Output]:
    """An execution's output."""
    agent.live()
    view: ExecutionView | None
    if execution_id is not None:
        view = agent.execution(execution_id)
    else:
        view = agent.runtime.latest_output(agent.ns, agent.id)
        if view is None:
            raise ApiError(
                ErrorCode.EXECUTION_NOT_FOUND,
                f"agent {agent.id} has no completed execution yet",
                {"agent_id": agent.id},
            )
    return Data(data=as_view(Output, view, execution_id=view.id))


_VERSION = Parameter(
    required=False, ge=1, description="An agent version (`/agents/{id}/versions/{n}`)."
)


@get(
    "/{agent_id:str}/logs",
    summary="Read an agent's log",
    description="Lines derived from the agent's events: turns, executions, tools, budget and"
    " instances. `level` is the minimum (`info`, `warning`, `error`); `version` keeps the"
    " lines of runs on that agent version.",
    responses=error_responses(404, 422),
)
async def agent_logs(
    agent: NamedDependency[AgentScope],
    level: Annotated[str, one_of(("info", "warning", "error"))] = "info",
    since: Annotated[
        str | None,
        Parameter(
            required=False,
            description="ISO-8601 time (inclusive).",
            schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="Newest lines to return.")] = 100,
    version: Annotated[int | None, _VERSION] = None,
) -> Data[list[LogEntry]]:
    """The newest log lines, oldest first."""
    agent.live()
    level = level.lower()
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
    lines = agent.runtime.logs(agent.id, level=chosen, since=after, limit=limit, version=version)
    return Data(data=lines)


@get(
    "/{agent_id:str}",
    summary="Read an agent's metrics",
    description="Requests (finished turns and executions), success rate, average response"
    " time, active conversations (a turn in the last 15 minutes), tokens, cost, budget and"
    " warm instances; with `version`, the run figures are those of runs on that agent version.",
    responses=error_responses(404),
)
async def agent_metrics(
    agent: NamedDependency[AgentScope], version: Annotated[int | None, _VERSION] = None
) -> Data[AgentMetrics]:
    """One agent's metrics (its runs on one version, when asked)."""
    agent.live()
    return Data(data=agent.runtime.metrics(agent.id, version=version))


output_router = Router(
    path="/api/v1/agents",
    route_handlers=[agent_output, agent_logs],
    dependencies=AGENT_SCOPE,
    tags=["executions"],
)
"""`GET /api/v1/agents/{id}/output` and `/logs`."""

metrics_router = Router(
    path="/api/v1/metrics/agents",
    route_handlers=[agent_metrics],
    dependencies=AGENT_SCOPE,
    tags=["metrics"],
)
"""`GET /api/v1/metrics/agents/{id}`."""
