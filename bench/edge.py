"""Commands through the edge: POST → event → visible to GET (read-your-writes).

The load comes from aiohttp: httpx tops out near 600 requests/s on these machines and would
measure itself, not the edge.
"""

import asyncio
import time
import uuid

import aiohttp

from bench._stats import Timer, post, report

__all__ = ["create_agents"]


async def create_agents(edge_url: str, count: int = 4_000, in_flight: int = 32) -> None:
    """Create agents through the edge: sequential latency, then throughput with concurrency."""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        run = uuid.uuid4().hex[:6]
        latencies = []
        with Timer() as t:
            for i in range(count // 8):
                start = time.perf_counter()
                await post(http, "/api/v1/agents", {"name": f"b{run}-s{i}"})
                latencies.append(time.perf_counter() - start)
        report(
            "create agent (POST → event → visible), sequential", count // 8, t.seconds, latencies
        )

        start_latencies = []
        with Timer() as t:
            for i in range(count // 8):
                start = time.perf_counter()
                created = await post(http, "/api/v1/agents", {"name": f"b{run}-r{i}"})
                await post(http, f"/api/v1/agents/{created['data']['id']}/start")
                start_latencies.append(time.perf_counter() - start)
        report("agent create + start → running, sequential", count // 8, t.seconds, start_latencies)

        queue = list(range(count))
        concurrent: list[float] = []

        async def client() -> None:
            while queue:
                i = queue.pop()
                start = time.perf_counter()
                await post(http, "/api/v1/agents", {"name": f"b{run}-c{i}"})
                concurrent.append(time.perf_counter() - start)

        with Timer() as t:
            await asyncio.gather(*(client() for _ in range(in_flight)))
        report(
            f"create agent through the edge, {in_flight} in flight", count, t.seconds, concurrent
        )

        ids = [
            (await post(http, "/api/v1/agents", {"name": f"b{run}-l{i}"}))["data"]["id"]
            for i in range(in_flight)
        ]
        actions = [("pause", "resume")[i % 2] for i in range(count // in_flight)]
        await asyncio.gather(*(post(http, f"/api/v1/agents/{a}/start") for a in ids))
        lifecycle: list[float] = []

        async def cycle(agent_id: str) -> None:
            for action in actions:
                start = time.perf_counter()
                await post(http, f"/api/v1/agents/{agent_id}/{action}")
                lifecycle.append(time.perf_counter() - start)

        with Timer() as t:
            await asyncio.gather(*(cycle(a) for a in ids))
        report(
            f"pause/resume through the edge, {in_flight} agents at once",
            len(lifecycle),
            t.seconds,
            lifecycle,
        )
