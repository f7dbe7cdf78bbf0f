"""The live console at ``/console``: server-rendered pages over the edge's own projections.

========================  ===================================================================
``pages``                 the public page shells (``/console/...``): layout, sign-in, no data
``views``                 the authenticated HTML views (``/api/v1/console/...``) the shells load
``charts``, ``sequence``  inline SVG: small metric charts, FIPA sequence diagrams (pure)
``series``, ``rounds``    an agent's runs over time; a round's bids scored by its strategy
``render``                the Jinja environment and the console's Content-Security-Policy
``static/``               ``console.js`` (sign-in, views, live updates) and ``console.css``
========================  ===================================================================

The shells are public through ``^/console(/|$)`` in :data:`parley.edge.http.auth.PUBLIC_PATHS`.

Signing in keeps the key in the tab's ``sessionStorage`` and sends it as ``X-API-Key`` on
the views' requests, so the console is reached exactly as the API is: the same
authentication, role guard and namespace walls, and no cookie a cross-site page could ride.
Live updates come from ``/ws``, opened with a single-use ticket (``POST /api/v1/ws-tickets``):
an event names what changed, and the page fetches that part's HTML again. Nothing polls.
"""

from litestar import Router
from litestar.di import Provide

from parley.edge.console.pages import page_router
from parley.edge.console.settings import ConsoleSettings
from parley.edge.console.settings import console_settings
from parley.edge.console.views import view_router

__all__ = ["console_routes"]


def console_routes(settings: ConsoleSettings | None = None) -> list[Router]:
    """The console's routers, with its settings (from the environment unless given).

    Raises:
        SettingsError: a ``PARLEY_`` console variable that does not parse.
    """
    chosen = settings if settings is not None else console_settings()
    provide = {"console": Provide(lambda: chosen, sync_to_thread=False)}
    return [
        Router("/", route_handlers=[page_router], dependencies=provide),
        Router("/", route_handlers=[view_router], dependencies=provide),
    ]
