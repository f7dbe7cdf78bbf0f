"""`/ws` event fan-out on one edge: many subscribers of a steady stream, and many idle ones.

- Fan-out: ``subscribers`` sockets subscribe to one stream; events are posted
  (``POST /api/v1/events``) at ``rate`` per second for ``seconds``. Each event carries the
  time it was posted; each socket notes when it got it (one clock: this process). Printed:
  the events delivered against those owed (every event to every subscriber), and the lag.
- Idle subscriptions: ``idle`` subscriptions (64 per socket, the most one socket may hold)
  that receive nothing, and the edge's resident memory before and after: what holding them
  costs.
"""

import asyncio
import contextlib
import time
import uuid

import aiohttp
import msgspec

from bench._stats import percentile

__all__ = ["fan_out", "idle_subscriptions"]

_PER_SOCKET = 64


class _Frame(msgspec.Struct):
    type: str
    event: dict[str, object] | None = None


_decode = msgspec.json.Decoder(_Frame).decode


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, sub_id: str, topic: str) -> None:
    await ws.send_json({"type": "subscribe", "id": sub_id, "filter": {"streams": [topic]}})
    reply = _decode((await ws.receive()).data)
    if reply.type != "subscribed":
        raise RuntimeError(f"subscribe refused: {reply}")


async def fan_out(
    edge_url: str, subscribers: int = 1_000, rate: int = 100, seconds: float = 5.0
) -> None:
    """``subscribers`` sockets on one stream, ``rate`` events per second for ``seconds``."""
    topic = f"fanout-{uuid.uuid4().hex[:8]}"
    events = int(rate * seconds)
    posted: dict[int, float] = {}
    lags: list[float] = []
    got = 0
    owed = events * subscribers
    all_in = asyncio.Event()
    url = edge_url.replace("http://", "ws://", 1) + "/ws"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with contextlib.AsyncExitStack() as held:
            opening = asyncio.Semaphore(100)

            async def open_one(i: int) -> aiohttp.ClientWebSocketResponse:
                async with opening:
                    ws = await held.enter_async_context(http.ws_connect(url, max_msg_size=0))
                    await _subscribe(ws, f"s{i}", f"custom-{topic}")
                    return ws

            sockets = await asyncio.gather(*(open_one(i) for i in range(subscribers)))

            async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
                nonlocal got
                while True:
                    message = await ws.receive()
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        return
                    frame = _decode(message.data)
                    if frame.type == "event" and frame.event is not None:
                        data = frame.event.get("data")
                        if isinstance(data, dict) and (n := data.get("n")) in posted:
                            lags.append(time.perf_counter() - posted[n])
                            got += 1
                            if got == owed:
                                all_in.set()

            readers = [asyncio.create_task(read(ws)) for ws in sockets]
            start = time.perf_counter()
            for n in range(events):
                await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
                posted[n] = time.perf_counter()
                body = {"type": "custom.tick_sent", "subject": topic, "data": {"n": n}}
                async with http.post(f"{edge_url}/api/v1/events", json=body) as answer:
                    if answer.status != 201:
                        raise RuntimeError(f"publish: {answer.status} {await answer.text()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 30)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    line = (
        f"{f'/ws fan-out, {subscribers:,} subscribers × {rate} events/s':<58}"
        f" {got:,} of {owed:,} delivered"
    )
    if lags:
        line += (
            f"  p50 {percentile(lags, 50) * 1e3:.1f} ms  p99 {percentile(lags, 99) * 1e3:.1f} ms"
        )
    print(line, flush=True)


async def idle_subscriptions(edge_url: str, edge_pid: int, count: int = 10_000) -> None:
    """Hold ``count`` subscriptions that receive nothing; print the edge's RSS around them."""
    topic = f"idle-{uuid.uuid4().hex[:8]}"
    url = edge_url.replace("http://", "ws://", 1) + "/ws"
    before = _rss_mib(edge_pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with contextlib.AsyncExitStack() as held:
            opening = asyncio.Semaphore(50)

            async def open_one(i: int) -> None:
                async with opening:
                    ws = await held.enter_async_context(http.ws_connect(url))
                    for j in range(min(_PER_SOCKET, count - i * _PER_SOCKET)):
                        await _subscribe(ws, f"s{j}", f"custom-{topic}-{j}")

            sockets = -(-count // _PER_SOCKET)
            await asyncio.gather(*(open_one(i) for i in range(sockets)))
            await asyncio.sleep(1.0)
            holding = _rss_mib(edge_pid)
    print(
        f"{f'{count:,} idle /ws subscriptions on one edge ({sockets} sockets)':<58}"
        f" edge RSS {before:,.0f} MiB → {holding:,.0f} MiB"
        f" ({(holding - before) * 1024 * 1024 / count:,.0f} bytes each)",
        flush=True,
    )
