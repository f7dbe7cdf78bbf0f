"""A version's health over a sliding window: runs, failures and latency p99 per version,
forgetting what is older than the span or beyond the sample cap; and what the deployment
service measures with it."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from _builders import stored

from parley.aggregates.version_health import Window
from parley.aggregates.version_health import p99
from parley.contracts.deployments import Health
from parley.deployment.workers.health import HealthWatch

NEW, OLD = ("a1", 2), ("a1", 1)


def test_a_version_with_no_runs_is_healthy_and_empty() -> None:
    assert Window[tuple[str, int]]().health(NEW) == Health(samples=0, errors=0, p99_ms=None)


def test_runs_and_failures_are_counted_per_version() -> None:
    window = Window[tuple[str, int]]()
    for i in range(10):
        window.add(NEW, ok=i % 5 != 0, latency_ms=10.0, at=float(i))
        window.add(OLD, ok=True, latency_ms=5.0, at=float(i))
    new, old = window.health(NEW), window.health(OLD)
    assert (new.samples, new.errors, new.error_rate) == (10, 2, 0.2)
    assert (old.samples, old.errors) == (10, 0)


def test_p99_is_the_nearest_rank_of_the_latencies() -> None:
    window = Window[str]()
    for ms in range(1, 201):
        window.add("v", ok=True, latency_ms=float(ms), at=0.0)
    assert window.health("v").p99_ms == 198.0
    assert p99([7.0]) == 7.0
    assert p99([]) is None


def test_runs_older_than_the_span_leave_the_window_with_their_failures() -> None:
    window = Window[str](span_s=60.0)
    window.add("v", ok=False, latency_ms=900.0, at=0.0)
    window.add("v", ok=True, latency_ms=10.0, at=30.0)
    assert window.health("v") == Health(samples=2, errors=1, p99_ms=900.0)
    window.add("v", ok=True, latency_ms=20.0, at=61.0)  # the failure at 0 is now too old
    assert window.health("v") == Health(samples=2, errors=0, p99_ms=20.0)
    assert window.health("v", now=200.0) == Health(samples=0, errors=0, p99_ms=None)


def test_the_window_keeps_at_most_max_samples_per_version_newest_first() -> None:
    window = Window[str](max_samples=3)
    for ok in (False, False, True, True, True):
        window.add("v", ok=ok, latency_ms=1.0)
    assert window.health("v") == Health(samples=3, errors=0, p99_ms=1.0)


def test_forgetting_a_version_drops_its_runs_only() -> None:
    window = Window[str]()
    window.add("old", ok=True, latency_ms=1.0)
    window.add("new", ok=False, latency_ms=1.0)
    window.forget("new")
    assert window.versions() == ["old"]
    assert window.health("new").samples == 0


def test_a_window_refuses_an_empty_span() -> None:
    with pytest.raises(ValueError, match="positive span"):
        Window[str](span_s=0)


def test_the_deployment_service_measures_only_runs_on_a_deployments_new_version() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    watch = HealthWatch()
    ends = [
        ("turn.completed", {"deployment_id": "d1", "response_time_ms": 10.0}),
        ("turn.failed", {"deployment_id": "d1", "response_time_ms": 30.0}),
        ("execution.failed", {"deployment_id": "d1", "response_time_ms": 20.0}),
        ("turn.cancelled", {"deployment_id": "d1", "response_time_ms": 5.0}),  # not judged
        ("turn.failed", {"response_time_ms": 5.0}),  # the old version
        ("turn.started", {"deployment_id": "d1"}),  # not an end
    ]
    seen = [
        watch.observe(
            stored(
                kind,
                data,
                stream="session-s1",
                version=i,
                source="/t",
                time=t0 + timedelta(seconds=i),
            )
        )
        for i, (kind, data) in enumerate(ends, 1)
    ]
    assert seen == [("default", "d1")] * 3 + [None] * 3
    assert watch.of(("default", "d1")) == Health(samples=3, errors=2, p99_ms=30.0)
    watch.forget(("default", "d1"))
    assert watch.of(("default", "d1")) is None
