"""Prometheus metrics of a service process, and its metrics port.

- :func:`serve_metrics` serves ``/metrics`` (prometheus-client's exposition of the process
  registry) and ``/healthz`` (200 while the service's health check passes, else 503; the
  check runs on the service's event loop, so a stuck loop is unhealthy too) on
  ``PARLEY_METRICS_PORT``, from a daemon thread. Without the setting each service takes its
  own default port (:data:`DEFAULT_PORTS`), so the dev stack's four services on one machine
  never collide; ``0`` disables the port.
- :func:`broker_metrics` is FastStream's Prometheus middleware for the broker's handlers
  (``faststream_received_*``), with the namespace of an external command's subject
  replaced by ``*`` so the ``handler`` label stays bounded.
- :func:`metered` counts and times a command handler (``parley_commands_total``,
  ``parley_command_duration_seconds``), whether FastStream or raw nats-py serves it.
"""

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterable
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any
from typing import ParamSpec
from typing import TypeVar
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

from faststream.message import StreamMessage
from faststream.nats.prometheus.provider import NatsMetricsSettingsProvider
from faststream.prometheus import ConsumeAttrs
from faststream.prometheus import PrometheusMiddleware
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import make_wsgi_app

from parley.contracts import subjects

__all__ = [
    "DEFAULT_PORTS",
    "HEALTH_CHECK_TIMEOUT_S",
    "broker_metrics",
    "metered",
    "metrics_port",
    "serve_metrics",
]

log = logging.getLogger(__name__)

DEFAULT_PORTS: Mapping[str, int] = {
    "registry": 9464,
    "runtime": 9465,
    "messaging": 9466,
    "tasks": 9467,
    "deployment": 9468,
}
"""Each service's metrics port when ``PARLEY_METRICS_PORT`` is unset (9464 is the default of
OpenTelemetry's Prometheus exporter); any other service takes 9464."""
HEALTH_CHECK_TIMEOUT_S = 2.0
"""A health check slower than this (a stuck event loop, NATS gone) answers 503."""

COMMANDS = Counter(
    "parley_commands_total",
    "Commands handled, by service, command verb and outcome (error: the reply was an error,"
    " raised by the handler or answered with ok false).",
    ["service", "command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "parley_command_duration_seconds",
    "Time a command handler took, by service and command verb.",
    ["service", "command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

P = ParamSpec("P")
R = TypeVar("R")


def metrics_port(service: str, configured: int | None) -> int:
    """The metrics port of ``service``: ``configured`` (``PARLEY_METRICS_PORT``) if set,
    else its :data:`DEFAULT_PORTS` entry; 0 means no port."""
    return configured if configured is not None else DEFAULT_PORTS.get(service, 9464)


def metered(
    service: str, verb: str, handle: Callable[P, Awaitable[R]]
) -> Callable[P, Awaitable[R]]:
    """``handle``, counted in ``parley_commands_total`` and timed in
    ``parley_command_duration_seconds``: a reply with ``ok`` false, or an exception (which
    propagates), counts as ``error``."""
    ok, error = COMMANDS.labels(service, verb, "ok"), COMMANDS.labels(service, verb, "error")
    seconds = COMMAND_SECONDS.labels(service, verb)

    @functools.wraps(handle)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            result = await handle(*args, **kwargs)
        except BaseException:
            error.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)
        (ok if getattr(result, "ok", True) else error).inc()
        return result

    return counted


class _BoundedSubjects(NatsMetricsSettingsProvider):
    """FastStream's NATS metrics settings, with an external command subject's namespace
    (``parley.ext.<namespace>.cmd.…``) written as ``*``: one series per route, not per
    namespace."""

    def get_consume_attrs_from_message(self, msg: StreamMessage[Msg]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        name = attrs["destination_name"]
        if name.startswith(subjects.EXTERNAL_PREFIX + "."):
            namespace = subjects.ext_namespace(name)
            attrs["destination_name"] = name.replace(f".{namespace}.", ".*.", 1)
        return attrs


def _bounded_subjects(msg: Msg | None) -> _BoundedSubjects | None:
    return _BoundedSubjects() if msg is None or isinstance(msg, Msg) else None


def broker_metrics(service: str) -> PrometheusMiddleware[Any, Any]:
    """FastStream's Prometheus middleware for ``service``'s broker (``faststream_*`` series
    in the process registry, ``app_name="parley-<service>"``)."""
    return PrometheusMiddleware(
        settings_provider_factory=_bounded_subjects,
        registry=REGISTRY,
        app_name=f"parley-{service}",
    )


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """Probes and scrapes are not logged."""


def _app(
    service: str, loop: asyncio.AbstractEventLoop, healthy: Callable[[], Coroutine[Any, Any, bool]]
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = _check(loop, healthy)
            body = json.dumps({"status": "ok" if ok else "unavailable", "service": service})
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
            )
            return [body.encode()]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics and /healthz are served here\n"]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def _check(
    loop: asyncio.AbstractEventLoop, healthy: Callable[[], Coroutine[Any, Any, bool]]
) -> bool:
    """Run ``healthy`` on the service's loop (from the server thread), bounded in time."""
    if loop.is_closed():
        return False
    future = asyncio.run_coroutine_threadsafe(healthy(), loop)
    try:
        return bool(future.result(HEALTH_CHECK_TIMEOUT_S))
    except Exception:
        future.cancel()
        return False


async def serve_metrics(
    service: str,
    port: int,
    stack: AsyncExitStack,
    healthy: Callable[[], Coroutine[Any, Any, bool]],
    host: str = "0.0.0.0",  # noqa: S104 (Prometheus and the kubelet reach it from outside)
) -> int | None:
    """Serve ``/metrics`` and ``/healthz`` on ``port`` until ``stack`` closes.

    A port already taken is logged and skipped, not fatal: the service still serves its
    commands (two stacks on one machine without ``PARLEY_METRICS_PORT`` share defaults).

    Returns:
        The port served, or None (disabled, or taken).
    """
    if port == 0:
        return None
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise in text
    app = _app(service, asyncio.get_running_loop(), healthy)
    try:
        server = make_server(host, port, app, _Server, handler_class=_Quiet)
    except OSError as exc:
        log.error(
            "metrics port %d not served (%s); set PARLEY_METRICS_PORT to a free port, or 0",
            port,
            exc.strerror or type(exc).__name__,
        )
        return None
    thread = threading.Thread(target=server.serve_forever, name=f"{service}-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()  # waits for the serving thread: not on the loop a probe may need
        server.server_close()

    stack.push_async_callback(asyncio.to_thread, stop)
    return port


class _Server(WSGIServer):
    """One thread for every scrape and probe: they are rare and short."""

    daemon_threads = True
