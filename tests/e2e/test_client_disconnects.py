"""A client that hangs up is not a server error.

Clients go away mid-request all the time: a body half sent, an SSE stream closed, a socket
reset. None of that may show up in the edge's log as an error with a 500 (operators page on
those), and the edge keeps serving.
"""

import asyncio
import json
import socket
import struct

import httpx
from tests_support import admin_key
from tests_support import edge_client

from parley.devstack.stack import Stack


def _log_lines(stack: Stack) -> list[str]:
    return (stack.state_dir / "logs" / "edge.log").read_text().splitlines()


def _server_errors(lines: list[str]) -> list[str]:
    errors = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "critical") or "socket.send()" in line:
            errors.append(line)
    return errors


async def _half_sent_body(stack: Stack, key: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.edge_port)
    writer.write(
        (
            "POST /api/v1/agents HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{stack.edge_port}\r\nX-API-Key: {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"name": "half'
        ).encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the edge is reading the body
    writer.close()
    await writer.wait_closed()


def _reset_event_stream(stack: Stack, key: str) -> None:
    sock = socket.create_connection(("127.0.0.1", stack.edge_port))
    sock.sendall(
        (
            "GET /api/v1/events HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{stack.edge_port}\r\nX-API-Key: {key}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    sock.recv(64)  # the stream has started
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST: gone without a goodbye


async def test_clients_that_hang_up_leave_no_server_error_in_the_log(stack: Stack) -> None:
    key = admin_key(stack)
    before = len(_log_lines(stack))
    for _ in range(5):
        await _half_sent_body(stack, key)
        await asyncio.to_thread(_reset_event_stream, stack, key)
    async with edge_client(stack, timeout=10) as http:
        # events flow to the closed streams meanwhile; the edge still serves
        for _ in range(10):
            created = await http.post("/api/v1/agents", json={"name": f"after-{_}-hangups"})
            assert created.status_code in (201, 409), created.text
        async with httpx.AsyncClient(base_url=stack.edge_url) as plain:
            assert (await plain.get("/ready")).status_code == 200
    await asyncio.sleep(1.0)  # let the edge notice the closed streams and log, if it would
    assert _server_errors(_log_lines(stack)[before:]) == []
