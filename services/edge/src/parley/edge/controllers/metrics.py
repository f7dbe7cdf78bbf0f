"""The JSON metrics views of a namespace: ``GET /api/v1/metrics`` (GoAgents' shape) and
``GET /api/v1/metrics/system`` (Caxton's), in the ``{"data": …}`` envelope.

Agents, clusters, requests and messages are the request's namespace's; ``system`` and
``resources`` are the answering edge process's own, and ``queue_size`` and ``disk_used_gb``
the platform's (the inbox queues and the JetStream streams are shared by every namespace).
"""

import asyncio
import os
import resource
import statistics
import time
from collections.abc import Sequence

import msgspec
from litestar import Router
from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.di import Provide

from parley.contracts.envelope import utcnow
from parley.edge.http.envelopes import Data
from parley.edge.projections.metrics import Namespace
from parley.edge.projections.metrics import PlatformMetrics
from parley.edge.views import iso

__all__ = ["PlatformSummary", "SystemMetrics", "platform_metrics_router"]

_MB = 1024 * 1024


class ProcessFigures(msgspec.Struct, kw_only=True):
    """The answering edge process."""

    uptime_seconds: float
    memory_usage_mb: float
    """Resident memory."""
    cpu_usage_percent: float
    """CPU time over wall time since the process started (100 = one core busy)."""
    goroutines: int
    """GoAgents' name; here the process's asyncio tasks."""


class ClusterCounts(msgspec.Struct, kw_only=True):
    """The namespace's live clusters."""

    total: int
    running: int
    """Active (not paused)."""
    scaling: int


class AgentCounts(msgspec.Struct, kw_only=True):
    """The namespace's live agents."""

    total: int
    active: int
    """Running."""
    idle: int
    """Not running: created, paused, stopped or failed."""


class RequestCounts(msgspec.Struct, kw_only=True):
    """The namespace's finished chat turns and executions."""

    total: int
    success_rate: float
    """Completed over finished (1.0 with none finished)."""
    avg_response_time_ms: float
    requests_per_minute: int
    """Finished in the last minute."""


class PlatformSummary(msgspec.Struct, kw_only=True):
    """`GET /api/v1/metrics` (GoAgents' system metrics)."""

    system: ProcessFigures
    clusters: ClusterCounts
    agents: AgentCounts
    requests: RequestCounts


class AgentStates(msgspec.Struct, kw_only=True):
    total: int
    running: int
    failed: int


class MessageFigures(msgspec.Struct, kw_only=True):
    total_processed: int
    """Messages delivered to the namespace's agents."""
    rate_per_second: float
    """Deliveries per second over the last minute."""
    queue_size: int
    """Deliveries waiting in the inbox queues (every namespace), as of the last poll."""


class Resources(msgspec.Struct, kw_only=True):
    cpu_usage_percent: float
    """The edge process's, as in `/api/v1/metrics`."""
    memory_used_mb: float
    """The edge process's resident memory."""
    memory_available_mb: float | None
    """Free memory of the edge's host (None where the OS does not say)."""
    disk_used_gb: float
    """Bytes the platform's JetStream streams store."""


class Performance(msgspec.Struct, kw_only=True):
    message_latency_p50: float | None
    """Milliseconds from `message.sent` to `message.delivered`, median of the latest 1,000."""
    message_latency_p99: float | None
    agent_spawn_time_ms: float | None
    """Mean cold start of the latest 1,000 agent instances."""


class SystemMetrics(msgspec.Struct, kw_only=True):
    """`GET /api/v1/metrics/system` (Caxton's system metrics)."""

    timestamp: str
    agents: AgentStates
    messages: MessageFigures
    resources: Resources
    performance: Performance


@get("/", summary="Read the platform's metrics (GoAgents' shape)")
async def platform_summary(
    metrics: NamedDependency[PlatformMetrics], ns: NamedDependency[str]
) -> Data[PlatformSummary]:
    """The namespace's agents, clusters and requests, and the answering process."""
    counts = _namespace(metrics, ns)
    agents, clusters = metrics.agent_states(ns), metrics.cluster_states(ns)
    runs = counts.runs
    return Data(
        data=PlatformSummary(
            system=_process(metrics),
            clusters=ClusterCounts(
                total=clusters["active"] + clusters["paused"],
                running=clusters["active"],
                scaling=clusters["scaling"],
            ),
            agents=AgentCounts(
                total=agents.total(),
                active=agents["running"],
                idle=agents.total() - agents["running"],
            ),
            requests=RequestCounts(
                total=runs,
                success_rate=round(counts.runs_ok / runs, 4) if runs else 1.0,
                avg_response_time_ms=round(counts.response_ms / runs, 3) if runs else 0.0,
                requests_per_minute=counts.since(counts.recent_runs, utcnow()),
            ),
        )
    )


@get("/system", summary="Read the system's metrics (Caxton's shape)")
async def system_metrics(
    metrics: NamedDependency[PlatformMetrics], ns: NamedDependency[str]
) -> Data[SystemMetrics]:
    """The namespace's agents and messages, the edge's resources, latencies."""
    now = utcnow()
    counts = _namespace(metrics, ns)
    agents = metrics.agent_states(ns)
    figures = _process(metrics)
    latencies = sorted(counts.delivery_ms)
    return Data(
        data=SystemMetrics(
            timestamp=iso(now),
            agents=AgentStates(
                total=agents.total(), running=agents["running"], failed=agents["failed"]
            ),
            messages=MessageFigures(
                total_processed=int(
                    counts.counts.get(("parley_message_deliveries", ("delivered",)), 0)
                ),
                rate_per_second=round(counts.since(counts.recent_deliveries, now) / 60, 3),
                queue_size=metrics.queues.inbox_backlog,
            ),
            resources=Resources(
                cpu_usage_percent=figures.cpu_usage_percent,
                memory_used_mb=figures.memory_usage_mb,
                memory_available_mb=_available_mb(),
                disk_used_gb=round(sum(s.bytes for s in metrics.queues.streams) / 1e9, 6),
            ),
            performance=Performance(
                message_latency_p50=_percentile(latencies, 50),
                message_latency_p99=_percentile(latencies, 99),
                agent_spawn_time_ms=round(statistics.fmean(counts.cold_start_ms), 3)
                if counts.cold_start_ms
                else None,
            ),
        )
    )


def _namespace(metrics: PlatformMetrics, ns: str) -> Namespace:
    return metrics.counts.namespaces.get(ns) or Namespace()


def _process(metrics: PlatformMetrics) -> ProcessFigures:
    uptime = time.monotonic() - metrics.started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcessFigures(
        uptime_seconds=round(uptime, 3),
        memory_usage_mb=round(_resident_bytes(usage) / _MB, 3),
        cpu_usage_percent=round(100 * (usage.ru_utime + usage.ru_stime) / max(uptime, 1e-9), 3),
        goroutines=len(asyncio.all_tasks()),
    )


def _resident_bytes(usage: resource.struct_rusage) -> int:
    """Resident memory now (Linux ``/proc``), else the peak the OS reports."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return usage.ru_maxrss * 1024


def _available_mb() -> float | None:
    try:
        return round(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / _MB, 3)
    except (OSError, ValueError):
        return None


def _percentile(ordered: Sequence[float], percent: int) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, len(ordered) * percent // 100)], 3)


def _platform(state: State) -> PlatformMetrics:
    metrics: PlatformMetrics = state.metrics
    return metrics


platform_metrics_router = Router(
    path="/api/v1/metrics",
    route_handlers=[platform_summary, system_metrics],
    dependencies={"metrics": Provide(_platform, sync_to_thread=False)},
    tags=["metrics"],
)
"""`GET /api/v1/metrics` and `/api/v1/metrics/system`."""
