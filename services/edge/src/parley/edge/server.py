"""The edge's HTTP server: uvicorn, configured and draining on its first signal.

On the first signal the edge first fails readiness (`/ready` answers 503, ``stopping``) for
``PARLEY_SHUTDOWN_DRAIN_S`` while it still serves; then uvicorn stops accepting, lets
in-flight requests finish (up to 10 s) and runs the app's shutdown (projection, store, NATS
drain). A second signal skips the wait.

Idle connections close after 5 s (also a half-sent body no handler read: its answer is
already sent). HTTP is parsed by httptools; request heads are capped at 16 KiB
(:mod:`parley.edge.http.heads`), and an answer leaves in one write
(:mod:`parley.edge.http.coalesce`). Slow bodies that a handler does read are
timed out by :class:`~parley.edge.http.bodytimeout.BodyTimeout`.

A client that goes away is no server error: asyncio's ``socket.send() raised exception.``
(a write to a connection the client has closed, e.g. an SSE stream's next frame) is not logged;
the request is simply over.
"""

import asyncio
import functools
import logging
import socket
from types import FrameType

import uvicorn
from litestar import Litestar

from parley.edge.http.coalesce import OneWriteHttpTools
from parley.edge.settings import EdgeSettings

__all__ = ["EdgeServer", "edge_server"]


def edge_server(settings: EdgeSettings, app: Litestar) -> "EdgeServer":
    """The server of ``app`` on ``settings.host``:``settings.port`` (``serve()`` it on the
    running loop, or ``run()`` it on a new one)."""
    logging.getLogger("asyncio").addFilter(_peer_gone)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
        timeout_keep_alive=5,
        http=OneWriteHttpTools,
        proxy_headers=False,  # the client is the peer: X-Forwarded-For is not believed
    )
    return EdgeServer(config, app, settings.shutdown_drain_s)


class EdgeServer(uvicorn.Server):
    """uvicorn's server, but its first SIGTERM/SIGINT marks the edge stopping (its readiness
    fails) ``drain`` seconds before uvicorn's own shutdown starts."""

    def __init__(self, config: uvicorn.Config, app: Litestar, drain: float) -> None:
        super().__init__(config)
        self.app, self.drain = app, drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        keeper = getattr(self.app.state, "keeper", None)
        if self._draining or self.drain <= 0 or self._loop is None or keeper is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        keeper.stopping()
        later = functools.partial(uvicorn.Server.handle_exit, self, sig, frame)
        self._loop.call_soon_threadsafe(self._loop.call_later, self.drain, later)


def _peer_gone(record: logging.LogRecord) -> bool:
    """False for asyncio's warning about writing to a socket the peer closed."""
    return not record.getMessage().startswith("socket.send() raised exception")
