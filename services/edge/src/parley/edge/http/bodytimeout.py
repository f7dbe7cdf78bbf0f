"""Slow or half-sent request bodies time out (slowloris on the body).

uvicorn waits for a request body as long as the client keeps the connection open: a client
that announces ``Content-Length: 1000`` and sends 10 bytes holds a connection and a task
forever. :class:`BodyTimeout` wraps the ASGI ``receive`` of every HTTP request: the body must
arrive in full within ``total`` seconds of the request, with no pause between two chunks
longer than ``idle`` seconds. Otherwise reading it raises ``408 REQUEST_TIMEOUT`` (with
``Connection: close``, so uvicorn closes the connection after the answer). Once the body is
complete, ``receive`` is passed through untouched: a streaming response (SSE) waits on it for
the client's disconnect for as long as it likes.

A request answered before its body was read (a guard's 429 or 403, a 404, a 413) has the
rest of its body read and dropped first, under the same timeouts and up to
:data:`DRAIN_MAX` bytes, so that the client reads the answer on a clean connection. A body
that does not finish in time, or is larger, gets the answer with ``Connection: close``:
otherwise a client could go on trickling it after the answer, and every byte would postpone
uvicorn's keep-alive timeout, for ever.
"""

import asyncio

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp
from litestar.types import Message
from litestar.types import Receive
from litestar.types import ReceiveMessage
from litestar.types import Scope
from litestar.types import Send

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["DRAIN_MAX", "BodyTimeout"]

DRAIN_MAX = 8 * 1024 * 1024
"""Most bytes of an unread body read and dropped before an answer; more closes instead."""


class BodyTimeout(ASGIMiddleware):
    """Raise ``408 REQUEST_TIMEOUT`` when a request body is too slow to arrive."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, total: float, idle: float) -> None:
        self.total, self.idle = total, idle

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Serve the request with a ``receive`` that times out while the body is incomplete."""
        body = _Body(receive, self.total, self.idle, _announced(scope))

        async def settling_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not await body.drained():
                headers = list(message.get("headers") or [])
                if not any(key.lower() == b"connection" for key, _ in headers):
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        await next_app(scope, body.receive, settling_send)


class _Body:
    """One request's body as it arrives, with its deadlines."""

    def __init__(self, receive: Receive, total: float, idle: float, announced: int | None):
        self.loop = asyncio.get_running_loop()
        self.source, self.total, self.idle = receive, total, idle
        self.deadline = self.loop.time() + total
        self.announced = announced
        self.complete = announced is None  # no body announced: nothing to wait for
        self.clean = True

    async def receive(self) -> ReceiveMessage:
        """The next message; ``408`` when the body is too slow (see the module doc)."""
        if self.complete:
            return await self.source()
        wait = max(0.0, min(self.idle, self.deadline - self.loop.time()))
        try:  # a timeout scope, not wait_for: no task wrapped around every receive
            async with asyncio.timeout(wait):
                message = await self.source()
        except TimeoutError:
            self.complete, self.clean = True, False  # what follows is only the disconnect
            raise ApiError(
                ErrorCode.REQUEST_TIMEOUT,
                f"the request body did not arrive in time (all of it within {self.total:g} s,"
                f" no pause over {self.idle:g} s)",
                headers={"Connection": "close"},
            ) from None
        if message["type"] != "http.request":
            self.complete, self.clean = True, False
        elif not message.get("more_body", False):
            self.complete = True
        return message

    async def drained(self) -> bool:
        """Read and drop what is left of the body; whether the connection is clean after."""
        if not self.complete and (self.announced or 0) > DRAIN_MAX:
            return False
        dropped = 0
        while not self.complete and dropped <= DRAIN_MAX:
            try:
                message = await self.receive()
            except ApiError:
                return False
            if message["type"] == "http.request":
                dropped += len(message.get("body", b""))
        return self.complete and self.clean


def _announced(scope: Scope) -> int | None:
    """The body's announced length (0 when chunked), or None when there is no body."""
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name == b"transfer-encoding":
            return 0
        if name == b"content-length":
            length = int(value) if value.strip().isdigit() else 0
            return length or None
    return None
