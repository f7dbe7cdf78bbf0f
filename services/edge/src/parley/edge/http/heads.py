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

A refused head, like any request llhttp cannot parse, is answered in the API's error envelope
(``400 INVALID_REQUEST``, JSON), not uvicorn's plain-text line.
"""

import asyncio
import logging
import secrets

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.edge.http.errors import ErrorEnvelope
from parley.edge.http.errors import ErrorInfo
from parley.edge.http.request_ids import REQUEST_ID_HEADER

__all__ = ["HEAD_CAP", "CappedHttpTools"]

log = logging.getLogger(__name__)

HEAD_CAP = 16 * 1024
"""Bytes a request's head (request line and headers) may take."""
_UVICORN_PARSE_ERROR = "Invalid HTTP request received."


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
        self._too_large = False
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
            self._too_large = True
            log.warning("a request head over %d bytes was refused", HEAD_CAP)
            raise HeadTooLarge

    def _refuse(self) -> None:
        self._too_large = True
        log.warning("a request head over %d bytes was refused", HEAD_CAP)
        self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        """Answer a request that cannot be parsed (or whose head is over the cap) with
        ``400 INVALID_REQUEST`` in the error envelope, and close the connection."""
        if self._too_large:
            message = f"the request's head (request line and headers) is over {HEAD_CAP} bytes"
        elif msg in ("", _UVICORN_PARSE_ERROR):
            message = "not a valid HTTP/1.1 request"
        else:
            message = msg  # uvicorn's own reason (an upgrade it does not support, …)
        request_id = new_id()
        body = msgspec.json.encode(
            ErrorEnvelope(
                error=ErrorInfo(
                    code=ErrorCode.INVALID_REQUEST,
                    message=message,
                    request_id=request_id,
                    trace_id=secrets.token_hex(16),
                )
            )
        )
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\n%s: %s\r\n"
            b"connection: close\r\n\r\n"
            % (len(body), REQUEST_ID_HEADER.lower().encode(), request_id.encode())
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
