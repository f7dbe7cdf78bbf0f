"""Small helpers to time things and print figures.

Every figure is kept in :data:`RESULTS` (for the closing comparison with the wire), and,
while :func:`watching` a stack's processes, printed with the CPU each process spent per
operation during it: the per-stage breakdown (edge, messaging, runtime, nats-server, …).
"""

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

__all__ = [
    "RESULTS",
    "Figure",
    "Timer",
    "from_one_queue",
    "measure",
    "one_at_a_time",
    "percentile",
    "post",
    "report",
    "side_by_side",
    "watching",
]

K = TypeVar("K")


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Figure:
    """One printed figure."""

    rate: float
    """Operations per second."""
    p50: float | None
    """Median latency in seconds (None when latencies were not taken)."""


RESULTS: dict[str, Figure] = {}
"""Every figure of the run, by name."""

_watched: dict[str, int] = {}
"""Process name → pid, whose CPU time each figure breaks down (see :func:`watching`)."""
_spent: dict[str, float] = {}
"""CPU seconds each watched process spent during the last :class:`Timer`."""


@contextlib.contextmanager
def watching(pids: Mapping[str, int]) -> Iterator[None]:
    """Within the block, each figure also prints the CPU each of ``pids`` spent per operation."""
    _watched.update(pids)
    try:
        yield
    finally:
        _watched.clear()
        _spent.clear()


def _cpu_seconds() -> dict[str, float]:
    """User + system CPU seconds of each watched process so far (Linux ``/proc``)."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if _watched else 1
    for name, pid in _watched.items():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def report(name: str, count: int, seconds: float, latencies: Sequence[float] = ()) -> None:
    """Print one figure line: rate, and p50/p99 in milliseconds when latencies are given;
    then, while watching processes, the CPU each spent per operation."""
    line = f"{name:<58} {count / seconds:>10,.0f}/s  ({count:,} in {seconds:.2f} s)"
    if latencies:
        line += (
            f"  p50 {percentile(latencies, 50) * 1e3:.2f} ms"
            f"  p99 {percentile(latencies, 99) * 1e3:.2f} ms"
            f"  mean {statistics.fmean(latencies) * 1e3:.2f} ms"
        )
    print(line, flush=True)
    RESULTS[name] = Figure(count / seconds, percentile(latencies, 50) if latencies else None)
    if _spent and count:
        stages = sorted(_spent.items(), key=lambda kv: -kv[1])
        shown = [f"{n} {s / count * 1e6:,.0f} µs" for n, s in stages if s / count >= 1e-6]
        total = sum(_spent.values()) / count * 1e6
        print(f"    CPU per operation: {' · '.join(shown)} (total {total:,.0f} µs)", flush=True)
    _spent.clear()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (and, while :func:`watching`, the CPU
    each watched process spent, for the next :func:`report`)."""

    def __enter__(self) -> "Timer":
        self._cpu = _cpu_seconds()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        after = _cpu_seconds()
        _spent.clear()
        _spent.update({n: after[n] - self._cpu[n] for n in after if n in self._cpu})


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
