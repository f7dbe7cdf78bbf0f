"""Commands through the edge: POST → event → visible to GET (read-your-writes)."""

import asyncio
import time
import uuid

import httpx

from bench._stats import Timer, report

__all__ = ["create_agents"]


async def create_agents(edge_url: str, count: int = 2_000, in_flight: int = 32) -> None:
    """Create agents through the edge: sequential latency, then throughput with concurrency."""
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=edge_url, timeout=30, limits=limits) as http:
        run = uuid.uuid4().hex[:6]
        latencies = []
        with Timer() as t:
            for i in range(count // 4):
                start = time.perf_counter()
                response = await http.post("/api/v1/agents", json={"name": f"b{run}-s{i}"})
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()
        report("create agent through the edge, sequential", count // 4, t.seconds, latencies)

        start_latencies = []
        with Timer() as t:
            for i in range(count // 8):
                start = time.perf_counter()
                created = await http.post("/api/v1/agents", json={"name": f"b{run}-r{i}"})
                agent_id = created.json()["data"]["id"]
                started = await http.post(f"/api/v1/agents/{agent_id}/start")
                start_latencies.append(time.perf_counter() - start)
                started.raise_for_status()
        report("agent create + start → running, sequential", count // 8, t.seconds, start_latencies)

        queue = list(range(count))
        concurrent: list[float] = []

        async def client() -> None:
            while queue:
                i = queue.pop()
                start = time.perf_counter()
                response = await http.post("/api/v1/agents", json={"name": f"b{run}-c{i}"})
                concurrent.append(time.perf_counter() - start)
                response.raise_for_status()

        with Timer() as t:
            await asyncio.gather(*(client() for _ in range(in_flight)))
        report(
            f"create agent through the edge, {in_flight} in flight", count, t.seconds, concurrent
        )
