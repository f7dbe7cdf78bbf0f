"""Small helpers to time things and print figures."""

import statistics
import time
from collections.abc import Sequence

__all__ = ["Timer", "percentile", "report"]


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
