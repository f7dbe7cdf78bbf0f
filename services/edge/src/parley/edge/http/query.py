"""Query parameters a route does not take are refused, not dropped.

The guard :func:`refuse_unknown_query` compares a request's query parameter names with the
ones its handler declares (its signature and its dependencies', as Litestar parsed them), plus
the names every route takes (`namespace`; `ticket` on a WebSocket) and any a handler reads
itself, listed in its ``opt`` under :data:`QUERY`. An unknown name is ``400 INVALID_REQUEST``
naming the accepted ones; `page`, `perPage` and `offset` are told to use cursors. `OPTIONS`
is not checked. A WebSocket is refused before its handshake completes.
"""

from collections.abc import Collection
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["QUERY", "refuse_unknown_query"]

QUERY = "query"
"""The handler ``opt`` key listing query parameters the handler reads itself."""

_EVERYWHERE = frozenset({"namespace"})
"""Every route takes the namespace as a query alternative to `X-Parley-Namespace`."""
_SOCKET = frozenset({"ticket"})
"""Every WebSocket takes a ticket from `POST /api/v1/ws-tickets`."""
_PAGING = frozenset({"page", "perPage", "per_page", "offset", "pageSize", "page_size"})
"""Offset paging other APIs use: lists here page by cursor."""
_CURSORS = (
    "lists page by cursor: pass `limit`, then `cursor` set to `pagination.next_cursor` of the"
    " previous page"
)

_accepted: dict[tuple[BaseRouteHandler, frozenset[str]], frozenset[str]] = {}
"""Accepted names per (handler, path parameter names): Litestar's parse, done once."""


async def refuse_unknown_query(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: ``400 INVALID_REQUEST`` for a query parameter the route does not take.

    Raises:
        ApiError: ``INVALID_REQUEST`` naming the unknown and the accepted parameters.
    """
    names = {name for name, _ in connection.query_params.multi_items()}
    if not names or connection.scope.get("method") == "OPTIONS":
        return  # a preflight carries the query of the request it asks about
    accepted = _accepted_names(connection, handler)
    unknown = sorted(names - accepted)
    if not unknown:
        return
    shown = ", ".join(sorted(accepted)) or "none"
    message = f"unknown query parameter {', '.join(unknown)}; this route takes: {shown}"
    if _PAGING.intersection(unknown):
        message += f" ({_CURSORS})"
    raise ApiError(
        ErrorCode.INVALID_REQUEST,
        message,
        {
            "errors": [{"field": f"query.{name}", "message": "unknown"} for name in unknown],
            "accepted": sorted(accepted),
        },
    )


def _accepted_names(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> frozenset[str]:
    path = frozenset(connection.scope.get("path_params", {}))
    key = (handler, path)
    found = _accepted.get(key)
    if found is None:
        model = handler.create_kwargs_model(path_parameters=dict.fromkeys(path))  # type: ignore[arg-type]
        declared = {param.field_alias for param in model.expected_query_params}
        extra: Collection[str] = handler.opt.get(QUERY, ())
        socket = _SOCKET if connection.scope["type"] == ScopeType.WEBSOCKET else frozenset()
        found = _accepted[key] = frozenset(declared) | frozenset(extra) | _EVERYWHERE | socket
    return found
