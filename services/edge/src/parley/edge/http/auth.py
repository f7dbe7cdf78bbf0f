"""Who is calling, and may they: the one authentication middleware and the one guard.

- :class:`AuthMiddleware` runs on every HTTP and WebSocket connection except the health
  probes and the OpenAPI docs (:data:`PUBLIC_PATHS`). It turns ``X-API-Key`` or
  ``Authorization: Bearer <key or JWT>`` (a WebSocket may instead bring ``?ticket=``) into a
  :class:`~parley.identity.principal.Principal` in ``scope["user"]``, or answers ``401
  UNAUTHORIZED`` with ``WWW-Authenticate``. A WebSocket handshake's ``Origin`` is checked
  first, so a foreign page is refused before anything is read or sent. A key in the URL
  (``?api_key=``) is refused: URLs end up in logs and histories.
- :func:`authorize` (the app's guard) answers for the route's :class:`Action` in the
  request's namespace: ``404`` for a namespace the principal does not see (nothing leaks its
  existence), ``403 FORBIDDEN`` for a role without the action.

A route's action is its handler's ``opt["action"]``, else by method: ``GET``/``HEAD`` read,
``POST`` create, ``PUT``/``PATCH`` change, ``DELETE`` delete, WebSocket subscribe.
With ``PARLEY_AUTH=off`` (loopback only) every caller is :data:`LOCAL_ADMIN`.
"""

import re
from typing import Any
from typing import cast

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import WebSocketException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware
from litestar.middleware import AuthenticationResult
from litestar.middleware.base import DefineMiddleware

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.identity import ALL_NAMESPACES
from parley.contracts.identity import Role
from parley.edge.http.errors import ApiError
from parley.identity.authn import API_KEY_HEADER
from parley.identity.principal import Action
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal

__all__ = [
    "ACTION",
    "EVERY_NAMESPACE",
    "LOCAL_ADMIN",
    "PUBLIC_PATHS",
    "AuthMiddleware",
    "auth_middleware",
    "authorize",
    "principal",
    "request_namespace",
    "unauthorized",
]

PUBLIC_PATHS = (
    *("^/health$", "^/livez$", "^/ready$", "^/readyz$", "^/metrics$", "^/schema(/|$)"),
    "^/console(/|$)",
    *(r"^/\.well-known/agent-card\.json$", "^/a2a/"),  # A2A cards: they check the caller
)
"""Paths served without credentials: the probes, Prometheus' scrape, the OpenAPI docs and
the console's page shells (no data: the views they load, `/api/v1/console/...`, authenticate)."""
ACTION = "action"
"""The handler ``opt`` key naming its :class:`Action` (when the method does not say it)."""
EVERY_NAMESPACE = "every_namespace"
"""The handler ``opt`` key of a route that spans all the caller's namespaces unless the
request names one (the event streams, tickets, the key list): without a namespace it needs
only the action in one of them; it narrows what it serves to the caller's namespaces."""
LOCAL_ADMIN = Principal(
    id="local", kind="bootstrap", roles=frozenset({Role.ADMIN}),
    namespaces=frozenset({ALL_NAMESPACES}), name="authentication off (loopback)",
)  # fmt: skip
"""Every caller's principal when authentication is off (``PARLEY_AUTH=off``, loopback)."""

_PUBLIC = re.compile("|".join(PUBLIC_PATHS))
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_BY_METHOD = {
    "GET": Action.READ,
    "HEAD": Action.READ,
    "POST": Action.CREATE,
    "PUT": Action.CHANGE,
    "PATCH": Action.CHANGE,
    "DELETE": Action.DELETE,
}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller of ``connection`` (set by :class:`AuthMiddleware`)."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise unauthorized(AuthenticationError("no credentials"))
    return user


def request_namespace(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The namespace a request acts in: ``X-Parley-Namespace``, else ``?namespace=``, else
    ``default`` (validated later by the ``ns`` dependency)."""
    return (
        connection.headers.get("x-parley-namespace")
        or connection.query_params.get("namespace")
        or "default"
    )


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Authenticate every connection (see the module)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """The caller's principal, or a ``401`` (a refused handshake for a WebSocket)."""
        edge = connection.app.state.edge
        socket = connection.scope["type"] == ScopeType.WEBSOCKET
        if socket:
            _check_origin(connection, edge.settings)
        if edge.settings.auth == "off":
            return AuthenticationResult(user=LOCAL_ADMIN, auth=None)
        try:
            return AuthenticationResult(user=await _authenticate(connection, edge), auth=None)
        except AuthenticationError as exc:
            if socket:
                raise WebSocketException(detail=exc.message[:120], code=4401) from None
            raise unauthorized(exc) from None


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any], edge: Any) -> Principal:
    query = connection.query_params
    if "api_key" in query or "apikey" in query or "key" in query:
        raise AuthenticationError(
            "a key in the URL is refused (URLs end up in logs); send X-API-Key, or for a"
            " browser WebSocket a ticket from POST /api/v1/ws-tickets as ?ticket="
        )
    headers = connection.headers
    api_key, authorization = headers.get(API_KEY_HEADER), headers.get("authorization")
    ticket = query.get("ticket") if connection.scope["type"] == ScopeType.WEBSOCKET else None
    if ticket and not (api_key or authorization):
        found: Principal = await edge.tickets.redeem(ticket)
        edge.keys.recheck(found)  # a ticket dies with its key
        return found
    return cast(Principal, await edge.authenticator.authenticate(api_key, authorization))


def unauthorized(exc: AuthenticationError) -> ApiError:
    """``401 UNAUTHORIZED`` for ``exc``, with the ``WWW-Authenticate`` challenge."""
    scheme = "Bearer" if exc.scheme == "Bearer" else "ApiKey"
    return ApiError(
        ErrorCode.UNAUTHORIZED,
        exc.message,
        exc.details,
        headers={"WWW-Authenticate": f'{scheme} realm="parley"'},
    )


def _check_origin(connection: ASGIConnection[Any, Any, Any, Any], settings: Any) -> None:
    """Refuse a WebSocket handshake from a page of another origin (cross-site WebSocket
    hijacking): only the allow-list and the edge's own loopback origins may open one."""
    origin = connection.headers.get("origin")
    if origin is None:
        return  # not a browser
    allowed = {o.rstrip("/").lower() for o in settings.allowed_origins}
    own = {f"http://{name}:{settings.port}" for name in _LOOPBACK_NAMES}
    if origin.rstrip("/").lower() in allowed | own or "*" in allowed:
        return
    raise WebSocketException(detail="origin not allowed (see PARLEY_ALLOWED_ORIGINS)", code=4403)


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: may this principal do this route's action in its namespace?

    A coroutine, though it awaits nothing: Litestar runs a plain-function guard in a worker
    thread, a thread hop on every request.

    Raises:
        ParleyError: ``NOT_FOUND`` in a namespace it does not see; ``FORBIDDEN`` for a role
            without the action.
    """
    if _PUBLIC.search(connection.scope["path"]) or connection.scope.get("method") == "OPTIONS":
        return
    who = principal(connection)
    action = handler.opt.get(ACTION) or _action_of(connection)
    if handler.opt.get(EVERY_NAMESPACE) and not _named_namespace(connection):
        if action not in who.actions:
            raise _forbidden(who, action, "any namespace")
        return
    namespace = request_namespace(connection)
    if not _NAMESPACE.match(namespace):
        return  # no such namespace can exist; the `ns` dependency answers 422
    if not who.sees(namespace):
        raise ParleyError(
            ErrorCode.NOT_FOUND,
            f"no such resource: {connection.scope['path'][:120]} in namespace {namespace}",
        )
    if not who.can(action, namespace):
        raise _forbidden(who, action, f"namespace {namespace}")


def _forbidden(who: Principal, action: Action, where: str) -> ParleyError:
    return ParleyError(
        ErrorCode.FORBIDDEN,
        f"{who.id} may not {action.value} in {where} (roles: {', '.join(sorted(who.roles))})",
        {"action": action.value, "roles": sorted(who.roles)},
    )


def _named_namespace(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return bool(
        connection.headers.get("x-parley-namespace") or connection.query_params.get("namespace")
    )


def _action_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Action:
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        return Action.SUBSCRIBE
    method = str(connection.scope.get("method", "GET"))
    return _BY_METHOD.get(method, Action.CHANGE)


def auth_middleware() -> DefineMiddleware:
    """The app's :class:`AuthMiddleware`, skipping :data:`PUBLIC_PATHS`."""
    return DefineMiddleware(AuthMiddleware, exclude=list(PUBLIC_PATHS))
