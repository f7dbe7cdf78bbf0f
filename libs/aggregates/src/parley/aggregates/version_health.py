"""Each version's health over a sliding window of its runs' outcomes: pure, no I/O.

A :class:`Window` keeps, per version key (whatever the caller names a version by: an
``(agent, version)`` pair, a deployment's new definition), the runs that ended in the last
``span_s`` seconds (by the time each run is given with, so a replay from the store measures
what the live feed measured) and at most ``max_samples`` of them. :meth:`Window.health` is
:class:`~parley.contracts.deployments.Health`: how many runs, how many failed, and their
latency p99 (nearest rank), which the deployment aggregate judges.
"""

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

from parley.contracts.deployments import Health

__all__ = ["Window", "p99"]

K = TypeVar("K", bound=Hashable)


@dataclass
class _Runs:
    """One version's runs in the window, oldest first, and how many of them failed."""

    samples: deque[tuple[float, bool, float]] = field(default_factory=deque)
    """(time, ok, latency_ms) of each run."""
    errors: int = 0

    def drop_oldest(self) -> None:
        _, ok, _ = self.samples.popleft()
        self.errors -= not ok


class Window(Generic[K]):
    """Runs per version over the last ``span_s`` seconds (at most ``max_samples`` each)."""

    def __init__(self, span_s: float = 300.0, max_samples: int = 10_000) -> None:
        if span_s <= 0 or max_samples < 1:
            raise ValueError("a window needs a positive span and room for one sample")
        self.span_s, self.max_samples = span_s, max_samples
        self._runs: dict[K, _Runs] = {}

    def add(self, version: K, ok: bool, latency_ms: float, at: float = 0.0) -> None:
        """One run of ``version`` ended at ``at`` (seconds, any epoch): ``ok`` or failed."""
        runs = self._runs.setdefault(version, _Runs())
        runs.samples.append((at, ok, latency_ms))
        runs.errors += not ok
        while len(runs.samples) > self.max_samples:
            runs.drop_oldest()
        self._expire(runs, at)

    def health(self, version: K, now: float | None = None) -> Health:
        """What the window holds of ``version`` (as of ``now``, when given)."""
        runs = self._runs.get(version)
        if runs is None:
            return Health()
        if now is not None:
            self._expire(runs, now)
        latencies = [latency for _, _, latency in runs.samples]
        return Health(samples=len(latencies), errors=runs.errors, p99_ms=p99(latencies))

    def forget(self, version: K) -> None:
        """Drop everything kept of ``version`` (e.g. its deployment ended)."""
        self._runs.pop(version, None)

    def versions(self) -> list[K]:
        """Every version with runs kept."""
        return list(self._runs)

    def _expire(self, runs: _Runs, now: float) -> None:
        oldest = now - self.span_s
        while runs.samples and runs.samples[0][0] < oldest:
            runs.drop_oldest()


def p99(latencies: list[float]) -> float | None:
    """The 99th percentile by nearest rank (None without latencies)."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]
