"""Request guards: the `Host` allowlist that runs before any handler, and `Idempotency-Key`.

Litestar's own allowed-hosts check compares the whole `Host` header, port included, and
answers outside the error envelope; this one ignores the port and raises :class:`ApiError`.
"""

import re
import uuid

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["HostGuard", "idempotent_id"]

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotent_id(key: str, namespace: str, space: uuid.UUID) -> str:
    """The id an `Idempotency-Key` stands for in ``namespace``: the same key, the same id.

    Raises:
        ApiError: ``INVALID_REQUEST`` unless the key is 1–255 printable ASCII characters.
    """
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "Idempotency-Key must be 1–255 printable ASCII characters",
            [{"field": "header.Idempotency-Key", "message": "invalid"}],
        )
    return str(uuid.uuid5(space, f"{namespace}\x00{key}"))


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostGuard(ASGIMiddleware):
    """Refuse requests whose `Host` (port ignored) is not allowed (`*` allows any)."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __init__(self, allowed_hosts: list[str]) -> None:
        names = [_hostname(h) for h in allowed_hosts]
        self.any = "*" in names
        self.exact = frozenset(n for n in names if not n.startswith("*."))
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))

    def allows(self, host: str | None) -> bool:
        """Whether ``host`` (a `Host` header value) is allowed."""
        if self.any:
            return True
        if not host:
            return False
        name = _hostname(host)
        return name in self.exact or name.endswith(self.suffixes)

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
