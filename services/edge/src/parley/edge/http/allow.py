"""`OPTIONS` answers name every method of their path (Litestar 2's do not: litestar#4169).

Litestar makes a route's `OPTIONS` handler when the path's first handler is registered, and
its `Allow` header reads the methods of the route it was made for. Registering another handler
of the same path makes a new route with more methods, but keeps the old `OPTIONS` handler, so
`Allow` names only the first handler's methods (`GET, OPTIONS` where `PATCH` and `DELETE` are
also served). :func:`fix_allow` points each such handler at the route that serves it.
"""

from litestar import Litestar
from litestar.routes import HTTPRoute

__all__ = ["fix_allow"]


def fix_allow(app: Litestar) -> None:
    """Point each route's generated `OPTIONS` handler at that route (see the module)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.http_methods != {"OPTIONS"}:
                continue
            for cell in getattr(handler.fn, "__closure__", None) or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
