"""Browser-facing hardening: the `Host` allow-list (ports included), CORS, security headers.

Litestar's defaults are permissive or absent for all three (DESIGN "Lessons from the field"):
no CORS is right, but no security headers and a host check that ignores ports are not.

- :class:`HostPolicy` refuses a `Host` that is not allowed, port included, with ``400
  INVALID_REQUEST`` in the error envelope, before any handler (and before the WebSocket
  handshake). By default only the loopback names with the edge's own port are allowed, so a
  DNS-rebinding page (``Host: evil.example``) or another local port cannot drive the edge.
- :func:`cors_config` is ``None`` (CORS closed: no ``Access-Control-*`` header is ever sent)
  unless ``PARLEY_CORS_ORIGINS`` lists origins; a preflight from any other origin gets no
  ``Access-Control-Allow-Origin``.
- :func:`add_security_headers` puts the security headers on every HTTP response: errors, SSE,
  files, the docs. API responses get the strict ``Content-Security-Policy`` and
  ``Cache-Control: no-store``; the docs' HTML pages (``/schema``, ``/schema/swagger``) get a
  CSP that lets them load Scalar / Swagger UI from ``cdn.jsdelivr.net`` (where Litestar's
  render plugins fetch them).
"""

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp
from litestar.types import Message
from litestar.types import Receive
from litestar.types import Scope
from litestar.types import Send

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = [
    "API_CSP",
    "DOCS_CSP",
    "DOCS_PREFIX",
    "HostPolicy",
    "add_security_headers",
    "cors_config",
    "split_host",
]

DOCS_PREFIX = "/schema"
"""Where the OpenAPI document and its UIs are served (see :mod:`parley.edge.http.openapi`)."""

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""The CSP of every API response: nothing may load, nothing may frame it."""

_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (
    "default-src 'none'; "
    f"script-src 'self' 'unsafe-inline' {_CDN}; "
    f"style-src 'self' 'unsafe-inline' {_CDN} https://fonts.googleapis.com; "
    f"img-src 'self' data: {_CDN}; "
    f"font-src 'self' data: {_CDN} https://fonts.scalar.com https://fonts.gstatic.com; "
    "connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""The docs pages' CSP: their scripts and styles come from the CDN and inline blocks."""

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def split_host(value: str) -> tuple[str, str | None]:
    """``(name, port)`` of a `Host` value or pattern, lower-cased (port ``None`` if absent).

    ``[::1]:8080`` → ``("[::1]", "8080")``; a bare IPv6 address (``::1``) has no port.
    """
    value = value.strip().lower().rstrip(".")
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        return name, port
    if value.count(":") > 1:  # a bare IPv6 address: bracket it as a Host header would
        return f"[{value}]", None
    return value, None


class HostPolicy(ASGIMiddleware):
    """Refuse a request or handshake whose `Host` is not allowed, port included.

    Patterns: ``name`` (no port in `Host`), ``name:port``, ``name:*`` (any port),
    ``*.suffix`` / ``*.suffix:port`` (subdomains), ``*`` (any host, any port).
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __init__(self, allowed_hosts: list[str]) -> None:
        self.any = any(pattern.strip() == "*" for pattern in allowed_hosts)
        self.patterns = [split_host(p) for p in allowed_hosts if p.strip() and p.strip() != "*"]

    def allows(self, host: str | None) -> bool:
        """Whether ``host`` (a `Host` header value) is allowed."""
        if self.any:
            return True
        if not host:
            return False
        name, port = split_host(host)
        for want_name, want_port in self.patterns:
            if want_port != "*" and want_port != port:
                continue
            if want_name == name:
                return True
            if want_name.startswith("*.") and name.endswith(want_name[1:]):
                return True
        return False

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on, or raise ``INVALID_REQUEST`` for a host not allowed."""
        host = next(
            (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None
        )
        if not self.allows(host):
            raise ApiError(
                ErrorCode.INVALID_REQUEST,
                "invalid Host header; the server does not serve this host"
                " (see PARLEY_ALLOWED_HOSTS)",
            )
        await next_app(scope, receive, send)


def cors_config(origins: list[str]) -> CORSConfig | None:
    """CORS for exactly ``origins``; ``None`` (closed: no CORS headers at all) when empty."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "If-Match",
            "traceparent",
            "X-API-Key",
            "X-Parley-Namespace",
            "X-Request-Id",
        ],
        expose_headers=[
            "ETag",
            "Location",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-Request-Id",
        ],
        allow_credentials=False,
        max_age=600,
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the security headers on every HTTP response.

    Litestar runs ``before_send`` for every message of every scope, so this covers the
    responses Litestar makes itself too (404/405, CORS preflights, the host refusal, errors
    raised before routing), not only the handlers'. A header a handler already set is kept
    (an SSE stream's own ``Cache-Control``).
    """
    if message["type"] != "http.response.start":
        return
    path = scope.get("path", "")
    docs = (path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/")) and not path.endswith(
        (".json", ".yaml", ".yml")
    )  # the docs' HTML pages; the OpenAPI document itself is data like any API answer
    extra = (
        *_COMMON,
        (b"content-security-policy", (DOCS_CSP if docs else API_CSP).encode()),
        (b"cache-control", b"no-cache" if docs else b"no-store"),
    )
    headers = list(message.get("headers") or [])
    present = {key.lower() for key, _ in headers}
    headers.extend((key, value) for key, value in extra if key not in present)
    message["headers"] = headers
