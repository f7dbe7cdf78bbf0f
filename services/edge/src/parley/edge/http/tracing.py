"""The server span of every HTTP request, continuing the caller's ``traceparent``.

With an OTLP endpoint set (spans are recorded and exported) it is Litestar's OpenTelemetry
plugin, the ASGI instrumentation: a span named by the route template, with the request's
attributes. Probes and scrapes (`/health`, `/ready`, `/metrics`, …) make no spans: they are
most of the requests and none of the interest. The ASGI ``receive``/``send`` sub-spans are
left out too: a streamed answer would otherwise make one span per chunk.

With none set, spans are not recorded (:func:`parley.kit.telemetry.setup_tracing`), and the
instrumentation's per-request work (wrapping ``send``, collecting attributes) would be spent
on nothing: :class:`TraceContext` only continues the caller's trace (or starts one) so the
commands a request sends, the events they record and its error answers carry its trace id.
"""

from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from litestar.types import ASGIApp
from litestar.types import Receive
from litestar.types import Scope
from litestar.types import Send
from opentelemetry import context
from opentelemetry import propagate
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan
from opentelemetry.trace import SpanContext
from opentelemetry.trace import TraceFlags

__all__ = ["TRACE_ID_KEY", "TraceContext", "tracing_plugin"]

UNTRACED = ["/health$", "/livez$", "/ready$", "/readyz$", "/metrics$"]
TRACE_ID_KEY = "parley_trace_id"
"""Where :class:`TraceContext` leaves the request's trace id in the ASGI scope (for errors
answered after its span ended)."""
_CARRIED = (b"traceparent", b"tracestate", b"baggage")
_ids = RandomIdGenerator()


def tracing_plugin() -> OpenTelemetryPlugin:
    """The plugin, using the tracer provider the process installed."""
    return OpenTelemetryPlugin(
        OpenTelemetryConfig(exclude=UNTRACED, exclude_spans=["receive", "send"])
    )


class TraceContext(ASGIMiddleware):
    """The request's (unrecorded) server span: the caller's trace continued, or a new one.

    Spans are not recorded here, so the span is made directly (a ``NonRecordingSpan`` with
    fresh ids), not through the tracer: its sampler and span machinery would decide, per
    request, to record nothing.
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request inside its span."""
        carrier: dict[str, Any] = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key.lower() in _CARRIED
        }
        parent = propagate.extract(carrier) if carrier else None
        caller = trace.get_current_span(parent).get_span_context() if carrier else None
        if caller is not None and caller.is_valid:
            trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
        else:
            trace_id, flags, state = _ids.generate_trace_id(), TraceFlags(0), None
        span = NonRecordingSpan(SpanContext(trace_id, _ids.generate_span_id(), False, flags, state))
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            scope[TRACE_ID_KEY] = format(trace_id, "032x")  # type: ignore[literal-required]
            await next_app(scope, receive, send)
        finally:
            context.detach(token)
