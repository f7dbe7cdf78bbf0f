"""The server span of every HTTP request: Litestar's OpenTelemetry plugin (the ASGI
instrumentation), continuing the caller's ``traceparent``, named by the route template.

Probes and scrapes (`/health`, `/ready`, `/metrics`, …) make no spans: they are most of the
requests and none of the interest. The ASGI ``receive``/``send`` sub-spans are left out too:
a streamed answer would otherwise make one span per chunk.
"""

from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry import OpenTelemetryPlugin

__all__ = ["tracing_plugin"]

UNTRACED = ["/health$", "/livez$", "/ready$", "/readyz$", "/metrics$"]


def tracing_plugin() -> OpenTelemetryPlugin:
    """The plugin, using the tracer provider the process installed."""
    return OpenTelemetryPlugin(
        OpenTelemetryConfig(exclude=UNTRACED, exclude_spans=["receive", "send"])
    )
