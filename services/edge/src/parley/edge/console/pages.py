"""The console's public page shells and static assets (``/console/...``).

A shell carries no data: the layout, the sign-in form, and the address of the view it loads
(``data-view``) with the event filter that keeps it live (``data-live``). Anyone may fetch
one; what is in it comes from :mod:`~parley.edge.console.views`, which authenticates.
"""

from collections.abc import Callable
from collections.abc import Mapping
from importlib.resources import files

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.console.render import CONSOLE_CSP
from parley.edge.console.render import html
from parley.edge.console.settings import ConsoleSettings
from parley.edge.controllers.lookups import ID

__all__ = ["page_router"]

_VIEWS = "/api/v1/console"
_FLEET_EVENTS = [
    *("agent.*", "instance.*", "budget.*", "spend.*"),
    *(f"turn.{end}" for end in ("completed", "failed", "cancelled", "interrupted")),
    *(f"execution.{end}" for end in ("completed", "failed", "cancelled")),
]
"""What changes a fleet row: its lifecycle, instances, spend, and finished runs."""
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
    live = {"types": _FLEET_EVENTS}
    return _shell("Fleet", f"{_VIEWS}/fleet", live, rows=f"{_VIEWS}/fleet/rows")


_ITEMS: dict[str, tuple[str, Callable[[str], Mapping[str, object]]]] = {
    "agents": ("Agent", lambda agent_id: {"agent_ids": [agent_id]}),
    "conversations": ("Conversation", lambda _: {"types": ["message.*"]}),
    "tasks": ("Contract Net", lambda _: {"types": ["task.*"]}),
    "deployments": ("Deployment", lambda _: {"types": ["deployment.*"]}),
}
"""Each item page: its title and the event filter that keeps it live."""


@get("/{kind:str}/{item_id:str}", include_in_schema=False)
async def item_page(kind: FromPath[str], item_id: FromPath[str]) -> Response[str]:
    """An agent, a conversation, a Contract Net round or a deployment, live.

    Raises:
        ParleyError: ``NOT_FOUND`` for another kind, or an id no resource can have (the
            shell puts the id in the address its script fetches: nothing else may go there).
    """
    page = _ITEMS.get(kind)
    if page is None or not ID.match(item_id):
        raise ParleyError(ErrorCode.NOT_FOUND, f"no console page /console/{kind[:40]}/…")
    title, live = page
    return _shell(title, f"{_VIEWS}/{kind}/{item_id}", live(item_id))


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
        item_page,
        events_page,
        asset,
    ],
)
