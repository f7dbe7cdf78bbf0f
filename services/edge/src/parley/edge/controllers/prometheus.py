"""``GET /metrics``: the platform's metrics in Prometheus' text format, without credentials.

Served unauthenticated and unlimited, as scrapers expect, so it shows only aggregates that
name nothing secret: counters summed over every namespace (no namespace, agent, session or
message ids as labels), gauges of current state, the queues' depths, and the edge process's
own resources. The exposition is prometheus-client's (``Accept`` picks the text format or
OpenMetrics).
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any

from litestar import Request
from litestar import Response
from litestar import get
from litestar.datastructures import State
from prometheus_client import CollectorRegistry
from prometheus_client import Gauge
from prometheus_client import GCCollector
from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from parley.contracts.registry import AgentState
from parley.edge.http.openapi import PRODUCES
from parley.edge.projections.metrics import COUNTERS
from parley.edge.projections.metrics import PlatformMetrics
from parley.edge.streams.hub import Hub

__all__ = ["PlatformCollector", "metrics_registry", "prometheus_metrics"]

_AGENT_STATES = tuple(state.value for state in AgentState)
_CLUSTER_STATES = ("active", "paused", "scaling")
"""A live cluster's states, and ``scaling`` (counted besides its state)."""


class PlatformCollector(Collector):
    """The metric families of a :class:`PlatformMetrics`, made at each scrape."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """Counters from the events, gauges of current state, the queues."""
        yield from self._counters()
        yield from self._states()
        yield from self._queues()
        position = GaugeMetricFamily(
            "parley_projection_position",
            "Store position the edge's metrics have folded up to.",
        )
        position.add_metric([], self.metrics.counts.applied_position)
        yield position

    def _counters(self) -> Iterator[Metric]:
        totals = self.metrics.counts.totals()
        for name, (text, labels) in COUNTERS.items():
            family = CounterMetricFamily(name, text, labels=labels)
            found = sorted(
                (key, value) for (counter, key), value in totals.items() if counter == name
            )
            for key, value in found or ([((), 0.0)] if not labels else []):
                family.add_metric(key, value)
            yield family

    def _states(self) -> Iterator[Metric]:
        metrics = self.metrics
        tables = (
            ("parley_agents", "Live agents, by state.", _AGENT_STATES, metrics.agent_states()),
            (
                "parley_clusters",
                "Live clusters, by state (scaling: being scaled now).",
                _CLUSTER_STATES,
                metrics.cluster_states(),
            ),
            (
                "parley_deployments",
                "Deployments, by state (the suffix of their latest deployment.* event).",
                (),
                Counter(metrics.counts.deployments.values()),
            ),
        )
        for name, text, known, counts in tables:
            family = GaugeMetricFamily(name, text, labels=["state"])
            for state in dict.fromkeys([*known, *counts]):
                family.add_metric([state], counts.get(state, 0))
            yield family

    def _queues(self) -> Iterator[Metric]:
        queues = self.metrics.queues
        stream_messages = GaugeMetricFamily(
            "parley_stream_messages", "Messages in a JetStream stream.", labels=["stream"]
        )
        stream_bytes = GaugeMetricFamily(
            "parley_stream_bytes", "Bytes stored by a JetStream stream.", labels=["stream"]
        )
        for depth in queues.streams:
            stream_messages.add_metric([depth.stream], depth.messages)
            stream_bytes.add_metric([depth.stream], depth.bytes)
        yield stream_messages
        yield stream_bytes
        consumer = {
            "pending": "Messages a work-queue consumer has not been given yet (its lag).",
            "ack_pending": "Messages a work-queue consumer took and has not acknowledged.",
            "redelivered": "Messages a work-queue consumer was given more than once, unacked.",
        }
        for field, text in consumer.items():
            family = GaugeMetricFamily(
                f"parley_consumer_{field}_messages", text, labels=["stream", "consumer"]
            )
            for backlog in queues.consumers:
                family.add_metric([backlog.stream, backlog.consumer], getattr(backlog, field))
            yield family


def metrics_registry(metrics: PlatformMetrics, hub: Hub | None = None) -> CollectorRegistry:
    """The edge app's registry: the platform's metrics and the process's own."""
    registry = CollectorRegistry()
    registry.register(PlatformCollector(metrics))
    if hub is not None:
        Gauge(
            "parley_event_hub_subscribers",
            "Event subscriptions (SSE, WebSocket) this edge serves from its one shared feed.",
            registry=registry,
        ).set_function(lambda: hub.subscribers)
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


@get(
    "/metrics",
    tags=["health", "metrics"],  # "health": documented without security, like the probes
    summary="Prometheus metrics",
    description="The platform's aggregate metrics in Prometheus' text format (OpenMetrics"
    " when asked for in `Accept`). No credentials: nothing in it is per namespace or secret.",
    sync_to_thread=False,
    opt={PRODUCES: ("text/plain", "application/openmetrics-text")},
)
def prometheus_metrics(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    """Every series of the edge's registry."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    media_type = content_type.replace("; charset=utf-8", "")  # Litestar appends it to text/*
    return Response(encode(state.metrics_registry), media_type=media_type)
