"""Small helpers to time things and print figures."""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

__all__ = ["Timer", "measure", "percentile", "post", "report"]


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report(name: str, count: int, seconds: float, latencies: Sequence[float] = ()) -> None:
    """Print one figure line: rate, and p50/p99 in milliseconds when latencies are given."""
    line = f"{name:<58} {count / seconds:>10,.0f}/s  ({count:,} in {seconds:.2f} s)"
    if latencies:
        line += (
            f"  p50 {percentile(latencies, 50) * 1e3:.2f} ms"
            f"  p99 {percentile(latencies, 99) * 1e3:.2f} ms"
            f"  mean {statistics.fmean(latencies) * 1e3:.2f} ms"
        )
    print(line, flush=True)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


async def post(http: aiohttp.ClientSession, path: str, body: dict | None = None) -> dict:
    """POST JSON to the edge; the decoded answer, or an error for a non-2xx status."""
    async with http.post(path, json=body) as response:
        payload = await response.json()
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status} {payload}")
        return payload


async def measure(
    name: str,
    operation: Callable[[int], Awaitable[None]],
    count: int,
    in_flight: int,
    *,
    concurrent_label: str = "in flight",
) -> None:
    """Report ``operation`` after a warm-up: a quarter of ``count`` one at a time, then
    ``count`` with ``in_flight`` running at once."""
    await operation(-1)
    latencies: list[float] = []
    with Timer() as t:
        for i in range(count // 4):
            start = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - start)
    report(f"{name}, sequential", len(latencies), t.seconds, latencies)
    queue = list(range(count))
    concurrent: list[float] = []

    async def worker() -> None:
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            await operation(i)
            concurrent.append(time.perf_counter() - start)

    with Timer() as t:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    report(f"{name}, {in_flight} {concurrent_label}", len(concurrent), t.seconds, concurrent)
