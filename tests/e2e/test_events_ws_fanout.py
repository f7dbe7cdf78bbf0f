"""One edge, 1,000 `/ws` subscribers: every one receives every event of a burst, in order,
from the edge's one event feed (no store subscription per subscriber)."""

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import nats
import pytest
from e2e_support import HubCheck
from tests_support import auth_headers
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect

from parley.devstack.stack import Stack

SUBSCRIBERS = 1_000
BURST = 25
OPENING = 100
"""Sockets opened at once (the handshake is the costly part, not the holding)."""


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # 1,000 handshakes from one key within a second or two: above the default rate limit
    return {"PARLEY_AUTH": "on", "PARLEY_RATE_LIMIT": "100000/1s"}


async def _subscribed(ws: ClientConnection, sub_id: str, topic: str) -> None:
    message = {"type": "subscribe", "id": sub_id, "filter": {"streams": [f"custom-{topic}"]}}
    await ws.send(json.dumps(message))
    async with asyncio.timeout(30):
        reply = json.loads(await ws.recv())
    assert reply["type"] == "subscribed" and reply["id"] == sub_id, reply


async def _events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` event frames of the socket (nothing else may come between)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while len(events) < count:
            frame = json.loads(await ws.recv())
            assert frame["type"] == "event", frame
            events.append(frame["event"])
    return events


async def test_a_thousand_subscribers_on_one_edge_all_receive_every_event_of_a_burst(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    topic = f"fanout-{uuid.uuid4().hex[:8]}"
    url = own_stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    headers = auth_headers(own_stack)
    nc = await nats.connect(own_stack.nats_url)
    try:
        async with connect(url, additional_headers=headers) as first:
            await _subscribed(first, "warm", topic)  # the edge's shared feed exists from here
        hub = await HubCheck.start(http, nc)
        async with contextlib.AsyncExitStack() as sockets:
            opening = asyncio.Semaphore(OPENING)

            async def subscriber(i: int) -> ClientConnection:
                async with opening:
                    ws = await sockets.enter_async_context(
                        connect(url, additional_headers=headers, open_timeout=60)
                    )
                    await _subscribed(ws, f"s{i}", topic)
                    return ws

            subscribers = await asyncio.gather(*(subscriber(i) for i in range(SUBSCRIBERS)))
            await hub.serving(SUBSCRIBERS)  # no JetStream consumer for any of them

            posted = []
            for n in range(BURST):
                body = {"type": "custom.burst_sent", "subject": topic, "data": {"n": n}}
                answer = await http.post("/api/v1/events", json=body)
                assert answer.status_code == 201, answer.text
                posted.append(answer.json()["data"])
            received = await asyncio.gather(*(_events(ws, BURST) for ws in subscribers))

        assert len(received) == SUBSCRIBERS
        wanted = [event["id"] for event in posted]
        short = [i for i, events in enumerate(received) if [e["id"] for e in events] != wanted]
        assert not short, f"{len(short)} subscribers missed or reordered events, e.g. {short[:5]}"
        await hub.released()
    finally:
        await nc.close()
