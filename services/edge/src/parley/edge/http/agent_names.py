"""Agents addressed by name wherever by id: the one place a name becomes an agent id.

Names are unique per namespace, so ``/api/v1/agents/{name}/...`` can mean only one agent.
:func:`agent_by_name`, an app guard that runs after the namespace walls are checked, looks
at a route's ``agent_id`` path parameter: when it is no live agent's id in the request's
namespace but a live agent's name there, the parameter becomes that agent's id before the
handler (or any of its dependencies) reads it. An id always wins over a name; a value that is
neither is left alone, and the route answers its ``404 AGENT_NOT_FOUND`` as before.

:func:`agent_ref` is the same lookup for ids in a body (message senders and receivers).
"""

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from parley.edge.http.auth import request_namespace
from parley.edge.projections.agents import AgentsProjection

__all__ = ["PATH_PARAM", "agent_by_name", "agent_ref"]

PATH_PARAM = "agent_id"
"""The path parameter of every route that names an agent."""


def agent_ref(agents: AgentsProjection, namespace: str, ref: str) -> str:
    """The id of the live agent ``ref`` names in ``namespace`` (its id, else its name);
    ``ref`` itself when it names none."""
    if agents.get(namespace, ref) is not None:
        return ref
    named = agents.named(namespace, ref)
    return named.id if named is not None else ref


async def agent_by_name(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: an ``agent_id`` path parameter that is an agent's name becomes its id."""
    params = connection.scope.get("path_params")
    if not params or PATH_PARAM not in params:
        return
    agents: AgentsProjection = connection.app.state.edge.agents
    params[PATH_PARAM] = agent_ref(agents, request_namespace(connection), params[PATH_PARAM])
