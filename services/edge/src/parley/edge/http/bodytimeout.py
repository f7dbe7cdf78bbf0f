"""Slow or half-sent request bodies time out (slowloris on the body).

uvicorn waits for a request body as long as the client keeps the connection open: a client
that announces ``Content-Length: 1000`` and sends 10 bytes holds a connection and a task
forever. :class:`BodyTimeout` wraps the ASGI ``receive`` of every HTTP request: the body must
arrive in full within ``total`` seconds of the request, with no pause between two chunks
longer than ``idle`` seconds. Otherwise reading it raises ``408 REQUEST_TIMEOUT`` (with
``Connection: close``, so uvicorn closes the connection after the answer). Once the body is
complete, ``receive`` is passed through untouched: a streaming response (SSE) waits on it for
the client's disconnect for as long as it likes.

A request refused before its body is read (a guard's 429 or 403, a 404, a 413 on the
announced length) is answered with ``Connection: close``: uvicorn closes the connection after
the answer. Otherwise a client could go on trickling the unread body, and every byte would
postpone uvicorn's keep-alive timeout, for ever.
"""

import asyncio

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["BodyTimeout"]


class BodyTimeout(ASGIMiddleware):
    """Raise ``408 REQUEST_TIMEOUT`` when a request body is too slow to arrive."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, total: float, idle: float) -> None:
        self.total, self.idle = total, idle

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Serve the request with a ``receive`` that times out while the body is incomplete."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total
        complete = False

        async def timed_receive() -> ReceiveMessage:
            nonlocal complete
            if complete:
                return await receive()
            wait = max(0.0, min(self.idle, deadline - loop.time()))
            try:
                message = await asyncio.wait_for(receive(), timeout=wait)
            except TimeoutError:
                complete = True  # what follows is the disconnect; do not time that out
                raise ApiError(
                    ErrorCode.REQUEST_TIMEOUT,
                    f"the request body did not arrive in time (all of it within {self.total:g} s,"
                    f" no pause over {self.idle:g} s)",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and has_body and not complete:
                headers = list(message.get("headers") or [])
                if not any(key.lower() == b"connection" for key, _ in headers):
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        has_body = _has_body(scope)
        await next_app(scope, timed_receive, closing_send)


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero length, or a chunked one)."""
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
