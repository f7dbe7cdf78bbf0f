"""Commands through the edge: POST → event → visible to GET (read-your-writes).

The load comes from aiohttp: httpx tops out near 600 requests/s on these machines and would
measure itself, not the edge.
"""

import asyncio
import uuid

import aiohttp

from bench._stats import from_one_queue
from bench._stats import one_at_a_time
from bench._stats import post
from bench._stats import report
from bench._stats import side_by_side

__all__ = ["create_agents"]


async def create_agents(edge_url: str, count: int = 4_000, in_flight: int = 32) -> None:
    """Create agents through the edge: sequential latency, then throughput with concurrency."""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        run = uuid.uuid4().hex[:6]

        async def create(name: str) -> str:
            return (await post(http, "/api/v1/agents", {"name": name}))["data"]["id"]

        async def create_and_start(i: int) -> None:
            await post(http, f"/api/v1/agents/{await create(f'b{run}-r{i}')}/start")

        latencies, seconds = await one_at_a_time(lambda i: create(f"b{run}-s{i}"), count // 8)
        report("create agent (POST → event → visible), sequential", count // 8, seconds, latencies)
        latencies, seconds = await one_at_a_time(create_and_start, count // 8)
        report("agent create + start → running, sequential", count // 8, seconds, latencies)
        latencies, seconds = await from_one_queue(
            lambda i: create(f"b{run}-c{i}"), count, in_flight
        )
        report(f"create agent through the edge, {in_flight} in flight", count, seconds, latencies)

        ids = [await create(f"b{run}-l{i}") for i in range(in_flight)]
        actions = [("pause", "resume")[i % 2] for i in range(count // in_flight)]
        await asyncio.gather(*(post(http, f"/api/v1/agents/{a}/start") for a in ids))
        latencies, seconds = await side_by_side(
            lambda agent_id, i: post(http, f"/api/v1/agents/{agent_id}/{actions[i]}"),
            ids,
            len(actions),
        )
        report(
            f"pause/resume through the edge, {in_flight} agents at once",
            len(latencies),
            seconds,
            latencies,
        )
