"""OpenTelemetry tracing with W3C ``traceparent`` carried in NATS headers."""

from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

__all__ = ["current_traceparent", "extract", "inject", "setup_tracing"]


def setup_tracing(
    service: str, otlp_endpoint: str | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install a tracer provider for ``service``; export over OTLP/HTTP when an endpoint is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"parley-{service}"}))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the current span's W3C ``traceparent`` (and ``tracestate``)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str] | None) -> context.Context:
    """The trace context carried in message ``headers``."""
    return propagate.extract(dict(headers or {}))


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, or None outside a recording span."""
    return inject().get("traceparent")
