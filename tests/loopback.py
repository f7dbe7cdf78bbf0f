"""An aiohttp application served on 127.0.0.1 and a free port: what every fake server in the
tests (providers' wire, an OTLP receiver, the ``http_request`` tool's "internet") runs on."""

from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["Loopback"]


class Loopback:
    """Serves ``app`` on loopback between :meth:`start` and :meth:`stop` (or for an
    ``async with``)."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        self.port = 0
        """The bound port (0 until started)."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        """Bind a free port and serve."""
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Close the server (open connections are dropped after 0.1 s)."""
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
