"""The console's public page shells and static assets (``/console/...``).

A shell carries no data: the layout, the sign-in form, and the address of the view it loads
(``data-view``) with the event filter that keeps it live (``data-live``). Anyone may fetch
one; what is in it comes from :mod:`~parley.edge.console.views`, which authenticates.
"""

from collections.abc import Mapping
from importlib.resources import files

import msgspec
from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from parley.contracts.errors import ErrorCode, ParleyError
from parley.edge.console.render import CONSOLE_CSP, html
from parley.edge.console.settings import ConsoleSettings

__all__ = ["page_router"]

_VIEWS = "/api/v1/console"
_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}


def _shell(title: str, view: str, live: Mapping[str, object], rows: str = "") -> Response[str]:
    return html(
        "shell.html",
        title=title,
        view=view,
        live=msgspec.json.encode(live).decode(),
        rows=rows,
    )


@get("/", summary="Console: the fleet", include_in_schema=False)
async def fleet_page() -> Response[str]:
    """The fleet: agents, their state, instances and spend, live."""
    live = {"types": ["agent.*", "runtime.*", "execution.*", "budget.*", "session.*"]}
    return _shell("Fleet", f"{_VIEWS}/fleet", live, rows=f"{_VIEWS}/fleet/rows")


@get("/agents/{agent_id:str}", include_in_schema=False)
async def agent_page(agent_id: FromPath[str]) -> Response[str]:
    """One agent: versions, sessions, executions, logs and charts, live."""
    return _shell("Agent", f"{_VIEWS}/agents/{agent_id}", {"agent_ids": [agent_id]})


@get("/conversations/{conversation_id:str}", include_in_schema=False)
async def conversation_page(conversation_id: FromPath[str]) -> Response[str]:
    """A conversation's FIPA messages as a sequence diagram, live."""
    live = {"types": ["message.*"]}
    return _shell("Conversation", f"{_VIEWS}/conversations/{conversation_id}", live)


@get("/tasks/{task_id:str}", include_in_schema=False)
async def task_page(task_id: FromPath[str]) -> Response[str]:
    """A Contract Net round: the cfp, the bids and their scores, the award, re-awards."""
    return _shell("Contract Net", f"{_VIEWS}/tasks/{task_id}", {"types": ["task.*"]})


@get("/deployments/{deployment_id:str}", include_in_schema=False)
async def deployment_page(deployment_id: FromPath[str]) -> Response[str]:
    """A deployment: stages, traffic split, health, the rollback reason."""
    live = {"types": ["deployment.*"]}
    return _shell("Deployment", f"{_VIEWS}/deployments/{deployment_id}", live)


@get("/events", include_in_schema=False)
async def events_page(console: NamedDependency[ConsoleSettings]) -> Response[str]:
    """The event log: filters, a start position, trace links (rows come from ``/ws``)."""
    return html("events.html", title="Events", jaeger=console.jaeger_url or "")


@get("/static/{name:str}", include_in_schema=False)
async def asset(name: FromPath[str]) -> Response[bytes]:
    """``console.js`` or ``console.css``.

    Raises:
        ParleyError: ``NOT_FOUND`` for any other name.
    """
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise ParleyError(ErrorCode.NOT_FOUND, f"no console asset {name[:80]!r}")
    body = files("parley.edge.console").joinpath("static", name).read_bytes()
    headers = {"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-cache"}
    return Response(body, media_type=media_type, headers=headers)


page_router = Router(
    "/console",
    route_handlers=[
        fleet_page,
        agent_page,
        conversation_page,
        task_page,
        deployment_page,
        events_page,
        asset,
    ],
)
