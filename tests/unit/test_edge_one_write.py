"""The edge's transport sends what one loop turn wrote as one write, in order."""

import asyncio

from parley.edge.http.coalesce import CoalescingTransport


class _Recording(asyncio.Transport):
    """A transport that records each write it is asked for (no socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_a_head_and_body_written_in_one_turn_leave_as_one_write() -> None:
    raw = _Recording()
    transport = CoalescingTransport(raw)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert raw.writes == []  # nothing before the turn ends
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_a_streamed_head_is_not_held_for_a_later_body() -> None:
    raw = _Recording()
    transport = CoalescingTransport(raw)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    transport.writelines([b"data: 1\n\n", memoryview(b"data: 2\n\n")])
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"data: 1\n\ndata: 2\n\n"]


async def test_close_sends_what_is_kept_first_and_nothing_goes_after() -> None:
    raw = _Recording()
    transport = CoalescingTransport(raw)
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and raw.closed
    transport.write(b"late")
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
