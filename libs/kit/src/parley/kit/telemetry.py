"""OpenTelemetry tracing with W3C ``traceparent`` carried in NATS headers, and the acting
principal carried beside it (the ``Parley-Actor`` header, :data:`ACTOR_HEADER`).

:func:`inject` adds both to an outgoing message's headers; a command route restores the span
from :func:`extract` and the actor from :func:`carried_actor` (held in
:data:`parley.contracts.envelope.current_actor`), so every event a chain of commands records
names the principal who started it.
"""

from collections.abc import Mapping
from typing import Any

from opentelemetry import context
from opentelemetry import propagate
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.envelope import current_actor
from parley.contracts.envelope import valid_actor
from parley.kit import genai

__all__ = ["carried_actor", "current_traceparent", "extract", "inject", "setup_tracing"]


def setup_tracing(
    service: str,
    otlp_endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    *,
    record_content: bool = False,
) -> TracerProvider:
    """A tracer provider for ``service``, exporting over OTLP/HTTP when an endpoint is set;
    the process's global one unless one is set already (every service in one process,
    :mod:`parley.combined`, keeps the first: its FastStream handlers still use their own).

    ``record_content`` puts prompt and completion text on model spans (:mod:`parley.kit.genai`).
    """
    genai.record_content(record_content)
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    # With nowhere to send them, spans are not recorded: they still carry the trace (ids made
    # and propagated, in events, replies and log lines), without the cost of recording.
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"parley-{service}"}),
        sampler=None if exporter is not None else ALWAYS_OFF,
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the current span's W3C ``traceparent`` (and ``tracestate``) and the
    current actor's ``Parley-Actor`` (unless ``headers`` already name one)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    actor = current_actor.get()
    if actor is not None:
        carrier.setdefault(ACTOR_HEADER, actor)
    return carrier


def extract(headers: Mapping[str, str] | None) -> context.Context:
    """The trace context carried in message ``headers``."""
    return propagate.extract(dict(headers or {}))


def carried_actor(headers: Mapping[str, Any] | None) -> str | None:
    """The principal named by message ``headers`` (``Parley-Actor``), None if none or malformed."""
    value = headers.get(ACTOR_HEADER) if headers else None
    return valid_actor(value) if isinstance(value, str) else None


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, or None outside a recording span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")
