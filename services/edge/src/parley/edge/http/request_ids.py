"""Request and trace ids: every response carries ``X-Request-Id``; errors add a trace id."""

import re
import uuid

from litestar.types import Message
from litestar.types import Scope
from opentelemetry import trace

from parley.contracts.ids import new_id

__all__ = ["REQUEST_ID_HEADER", "add_request_id_header", "request_id", "trace_id"]

REQUEST_ID_HEADER = "x-request-id"
_SCOPE_KEY = "parley_request_id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_id(scope: Scope) -> str:
    """This request's id: the client's ``X-Request-Id`` if it is safe to echo, else a new one."""
    found = scope.get(_SCOPE_KEY)
    if found is None:
        given = _header(scope, REQUEST_ID_HEADER.encode())
        found = given if given is not None and _SAFE_ID.match(given) else new_id()
        scope[_SCOPE_KEY] = found  # type: ignore[literal-required]
    return str(found)


def trace_id(scope: Scope) -> str:
    """The current span's trace id, else the one in ``traceparent``, else a new one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    if (found := scope.get("parley_trace_id")) is not None:  # the request's span has ended
        return str(found)
    traceparent = _header(scope, b"traceparent")
    if traceparent and (match := _TRACEPARENT.match(traceparent.strip().lower())):
        return match.group(1)
    return uuid.uuid4().hex


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: put ``X-Request-Id`` on every HTTP response."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers") or [])
        if not any(key.lower() == REQUEST_ID_HEADER.encode() for key, _ in headers):
            headers.append((REQUEST_ID_HEADER.encode(), request_id(scope).encode()))
            message["headers"] = headers
