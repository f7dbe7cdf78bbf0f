"""Small helpers to time things and print figures."""

import asyncio
import statistics
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TypeVar

import aiohttp

__all__ = [
    "Timer",
    "from_one_queue",
    "measure",
    "one_at_a_time",
    "percentile",
    "post",
    "report",
    "side_by_side",
]

K = TypeVar("K")


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


async def one_at_a_time(
    operation: Callable[[int], Awaitable[object]], count: int
) -> tuple[list[float], float]:
    """``operation(0)`` … ``operation(count - 1)``, each awaited before the next: the latency
    of each, and the seconds all took."""
    latencies: list[float] = []
    with Timer() as t:
        for i in range(count):
            start = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - start)
    return latencies, t.seconds


async def from_one_queue(
    operation: Callable[[int], Awaitable[object]], count: int, in_flight: int
) -> tuple[list[float], float]:
    """``operation(i)`` for each ``i`` below ``count``, ``in_flight`` running at once (workers
    taking the next ``i`` from one queue): the latency of each, and the seconds all took."""
    queue = list(range(count))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - start)

    with Timer() as t:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return latencies, t.seconds


async def side_by_side(
    operation: Callable[[K, int], Awaitable[object]], keys: Iterable[K], count_each: int
) -> tuple[list[float], float]:
    """For every key at once, ``operation(key, 0)`` … ``operation(key, count_each - 1)`` one
    after another: the latency of each call, and the seconds all took."""
    latencies: list[float] = []

    async def in_turn(key: K) -> None:
        for i in range(count_each):
            start = time.perf_counter()
            await operation(key, i)
            latencies.append(time.perf_counter() - start)

    with Timer() as t:
        await asyncio.gather(*(in_turn(key) for key in keys))
    return latencies, t.seconds


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
    latencies, seconds = await one_at_a_time(operation, count // 4)
    report(f"{name}, sequential", len(latencies), seconds, latencies)
    latencies, seconds = await from_one_queue(operation, count, in_flight)
    report(f"{name}, {in_flight} {concurrent_label}", len(latencies), seconds, latencies)
