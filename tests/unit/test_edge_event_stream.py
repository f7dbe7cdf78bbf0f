"""The edge's Server-Sent Events are read and encoded on the event loop, with litestar's
headers and framing: not through litestar's own response, which takes its header lines (none
here) one by one in a worker thread, a thread hop before every stream's first frame."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar import get
from litestar.response import sse
from litestar.response.sse import ServerSentEventMessage
from litestar.testing import AsyncTestClient

from parley.edge.http.eventstream import EventStream


async def _messages() -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data="one\ntwo", event="token", id="t1:1")
    yield ServerSentEventMessage(data=None, comment="keep-alive")


@get("/stream")
async def _stream() -> EventStream:
    return EventStream(_messages(), headers={"Parley-Replay-Id": "r1"})


async def test_an_event_stream_is_framed_as_litestar_frames_it_without_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hops: list[Any] = []

    async def to_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return fn(*args, **kwargs)

    monkeypatch.setattr(sse, "sync_to_thread", to_thread)
    async with AsyncTestClient(Litestar([_stream])) as client:
        response = await client.get("/stream")
    assert response.text == (
        "id: t1:1\r\nevent: token\r\ndata: one\r\ndata: two\r\n\r\n: keep-alive\r\n\r\n"
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["parley-replay-id"] == "r1"
    assert hops == []
