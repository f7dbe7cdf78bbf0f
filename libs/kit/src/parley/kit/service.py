"""FastStream bootstrap shared by every service: broker, health subject, tracing, logs."""

import logging
import time
from collections.abc import Callable

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.specification import AsyncAPI

from parley.contracts import subjects
from parley.kit.logs import configure_logging
from parley.kit.settings import ServiceSettings
from parley.kit.telemetry import setup_tracing

__all__ = ["create_service"]


def create_service(
    name: str,
    settings: ServiceSettings,
    register: Callable[[NatsBroker], None],
    *,
    description: str = "",
) -> FastStream:
    """A FastStream app for service ``name`` with its handlers registered by ``register``.

    Adds the health subject ``parley.health.<name>``, OpenTelemetry spans continued from the
    ``traceparent`` header of each message, and JSON logs. FastStream's per-message log is
    off: it costs about a third of the request rate (DESIGN.md, performance figures).
    """
    configure_logging(name, settings.log_level)
    provider = setup_tracing(name, settings.otlp_endpoint)
    broker = NatsBroker(
        settings.nats_url,
        name=f"parley-{name}",
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger(f"parley.{name}.broker"),
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
    )
    started = time.monotonic()

    @broker.subscriber(subjects.health(name), title=f"{name}.health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "service": name, "uptime_s": round(time.monotonic() - started, 3)}

    register(broker)
    return FastStream(
        broker,
        logger=logging.getLogger(f"parley.{name}"),
        specification=AsyncAPI(title=f"parley-{name}", version="1", description=description),
    )
