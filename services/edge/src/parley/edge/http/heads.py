"""uvicorn's httptools protocol, with a cap on a request's head.

The edge parses HTTP with httptools (llhttp, in C): about a quarter less CPU per request than
h11 here. h11 refuses a head over a set size; llhttp has no such cap, and httptools keeps a
header it has not seen the end of in memory, so a client could grow one header without
bound. This protocol refuses (400, connection closed, as h11 does) a request whose head is
over :data:`HEAD_CAP`:

- while a head is incomplete, every byte received counts (a header that never ends is cut
  off once the bytes after the last complete head pass the cap);
- a head that arrives whole in one read is measured from what it parsed to: the URL, and each
  header's name and value with its ``: `` and line end.
"""

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEAD_CAP", "CappedHttpTools"]

log = logging.getLogger(__name__)

HEAD_CAP = 16 * 1024
"""Bytes a request's head (request line and headers) may take."""


class HeadTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into a parser error (a 400)."""


class CappedHttpTools(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` refusing a request head over :data:`HEAD_CAP` bytes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_open = True
        self._head_bytes = 0
        """Bytes received since the last complete head (while a head is open)."""
        self._head_size = 0
        """The current head's parsed size."""
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._head_open or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > HEAD_CAP:
            self._refuse()

    def on_message_begin(self) -> None:
        self._head_open, self._head_size = True, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes = False, 0
        super().on_headers_complete()

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > HEAD_CAP:
            raise HeadTooLarge

    def _refuse(self) -> None:
        message = "Invalid HTTP request received."
        log.warning("a request head over %d bytes was refused", HEAD_CAP)
        self.send_400_response(message)
