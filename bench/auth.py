"""What the authentication check costs: a command through the edge with and without it.

Two edges on one stack (one registry, one nats-server): the stack's own, authentication on,
called with the bootstrap admin key; and a second on loopback with ``PARLEY_AUTH=off``. The
same command (create an agent: POST → event → visible) goes to each in turn, so both see
the same load and store size; the p50 difference is the auth check's cost (one SHA-256, one
dict lookup, the role and namespace guard). Also the in-process cost of
``Authenticator.authenticate`` alone.
"""

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp

from bench._stats import percentile
from bench._stats import post
from bench._stats import report
from parley.devstack.nats import free_port
from parley.devstack.stack import Stack
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key_at

__all__ = ["auth_overhead"]


async def auth_overhead(stack: Stack, count: int = 2_000) -> None:
    """Print the p50 of a command through the edge with and without the key check."""
    key = await _admin_key(stack)
    port = free_port()
    open_edge = f"http://127.0.0.1:{port}"
    stack.start_process(
        "edge", key="edge-open", env={"PARLEY_AUTH": "off", "PARLEY_EDGE_PORT": str(port)}
    )
    try:
        await _ready(open_edge)
        run = uuid.uuid4().hex[:6]
        on: list[float] = []
        off: list[float] = []
        async with (
            aiohttp.ClientSession(stack.edge_url, headers={"X-API-Key": key}) as keyed,
            aiohttp.ClientSession(open_edge) as anonymous,
        ):
            for i in range(50):  # warm both up
                await post(keyed, "/api/v1/agents", {"name": f"w{run}-k{i}"})
                await post(anonymous, "/api/v1/agents", {"name": f"w{run}-a{i}"})
            started = time.perf_counter()
            for i in range(count):
                for http, samples, tag in ((keyed, on, "k"), (anonymous, off, "a")):
                    t = time.perf_counter()
                    await post(http, "/api/v1/agents", {"name": f"b{run}-{tag}{i}"})
                    samples.append(time.perf_counter() - t)
            seconds = time.perf_counter() - started
        report("create agent, auth on (X-API-Key), sequential", count, seconds / 2, on)
        report("create agent, auth off (loopback), sequential", count, seconds / 2, off)
        delta = (percentile(on, 50) - percentile(off, 50)) * 1e3
        print(f"{'auth check, p50 added to a command':<58} {delta:>+10.3f} ms", flush=True)
    finally:
        await asyncio.to_thread(stack.stop_process, "edge-open")
    await _in_process(key, stack)


async def _in_process(key: str, stack: Stack) -> None:
    """``Authenticator.authenticate`` alone, on a key index that knows the key."""
    from parley.eventstore.factory import open_store
    from parley.identity.authn import Authenticator
    from parley.identity.keyindex import KeyIndex

    store = await open_store(backend="jetstream", nats_url=stack.nats_url)
    try:
        index = KeyIndex(store)
        await index.start()
        await index.wait_for(index.target_position, within=30)
        authenticator = Authenticator(index)
        samples = []
        for _ in range(20_000):
            t = time.perf_counter()
            await authenticator.authenticate(api_key=key)
            samples.append(time.perf_counter() - t)
        await index.stop()
        print(
            f"{'Authenticator.authenticate (in process), p50':<58}"
            f" {percentile(samples, 50) * 1e6:>10.1f} µs",
            flush=True,
        )
    finally:
        await store.close()


async def _admin_key(stack: Stack) -> str:
    path = Path(stack.state_dir) / ADMIN_KEY_FILE
    if not path.exists():
        await bootstrap_admin_key_at(stack.nats_url, stack.state_dir)
    key = path.read_text().strip()
    async with aiohttp.ClientSession(stack.edge_url, headers={"X-API-Key": key}) as http:
        for _ in range(200):  # the edge's key index follows the store: wait until it knows
            async with http.get("/api/v1/keys") as response:
                if response.status == 200:
                    return key
            await asyncio.sleep(0.05)
    raise RuntimeError("the edge never accepted the bootstrap admin key")


async def _ready(url: str) -> None:
    async with aiohttp.ClientSession(url) as http:
        for _ in range(600):
            try:
                async with http.get("/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the second edge at {url} never became ready")
