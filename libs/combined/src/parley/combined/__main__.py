"""``python -m parley.combined``: every service and the edge in one process, on one event
loop, for small installs (``just up --combined``).

Each service is the same FastStream app, with its own NATS connection, event store and
workers, as when it runs alone (``python -m parley.<service>``). They start one after the
other, then the edge serves. The first SIGTERM/SIGINT drains the edge as when it runs alone
(:mod:`parley.edge.server`); once it has stopped, the services stop together (each takes no
more work, finishes or hands back what it holds, and closes). A signal after that ends the
process at once.

One process spares the memory of five interpreters and the switching between six processes
on a few cores; it gives up every core but one (``just bench --combined`` measures both).

Logs are tagged ``"service": "combined"`` (``logger`` names the service). Spans of the
services' FastStream handlers keep their service's name; the rest are ``parley-combined``.
Each service serves its metrics port as when alone (``/healthz`` checks that service,
``/metrics`` shows the whole process); with ``PARLEY_METRICS_PORT`` set the services take
that port and the ones after it, in the order below.
"""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from collections.abc import Mapping

from faststream import FastStream

from parley.deployment.app import create_app as deployment
from parley.deployment.settings import DeploymentSettings
from parley.edge.app import create_app as edge
from parley.edge.server import EdgeServer
from parley.edge.server import edge_server
from parley.edge.settings import load_settings as edge_settings
from parley.kit.logs import configure_logging
from parley.kit.loop import run
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env
from parley.kit.telemetry import setup_tracing
from parley.messaging.app import create_app as messaging
from parley.messaging.settings import MessagingSettings
from parley.registry.app import create_app as registry
from parley.registry.settings import RegistrySettings
from parley.runtime.app import create_app as runtime
from parley.runtime.settings import load_settings as runtime_settings
from parley.tasks.app import create_app as tasks
from parley.tasks.settings import TasksSettings

log = logging.getLogger("parley.combined")

SERVICES: tuple[tuple[str, Callable[[Mapping[str, str]], FastStream]], ...] = (
    ("registry", lambda env: registry(from_env(RegistrySettings, env))),
    ("runtime", lambda env: runtime(runtime_settings(env))),
    ("messaging", lambda env: messaging(from_env(MessagingSettings, env))),
    ("tasks", lambda env: tasks(from_env(TasksSettings, env))),
    ("deployment", lambda env: deployment(from_env(DeploymentSettings, env))),
)
"""Each service and how its app is made from the environment, in the order they start."""


def main() -> None:
    """Build every service and the edge from the environment, then run them."""
    try:
        apps, server = build()
    except SettingsError as exc:
        raise SystemExit(f"parley combined: {exc}") from None
    run(_serve(apps, server))


def build() -> tuple[list[FastStream], EdgeServer]:
    """Every service's app and the edge's server, made from the environment; the process's
    logs tagged ``combined`` and its global tracer provider ``parley-combined``.

    Raises:
        SettingsError: A setting has a value it cannot take.
    """
    settings = edge_settings()
    # first: the services' own set-up keeps a global provider that is already there
    setup_tracing("combined", settings.otlp_endpoint, record_content=settings.trace_content)
    apps = [make(_environment(i)) for i, (_, make) in enumerate(SERVICES)]
    server = edge_server(settings, edge(settings))
    configure_logging("combined", settings.log_level)  # last: each service set its own
    return apps, server


def _environment(index: int) -> Mapping[str, str]:
    """The environment of the ``index``-th service: its own metrics port when one is set."""
    port = os.environ.get("PARLEY_METRICS_PORT")
    if port is None or not port.isdigit() or int(port) == 0:
        return os.environ  # each its default, or none, or the setting's own error
    return {**os.environ, "PARLEY_METRICS_PORT": str(int(port) + index)}


async def _serve(apps: list[FastStream], server: EdgeServer) -> None:
    started: list[FastStream] = []
    try:
        for app in apps:
            await app.start()
            started.append(app)
        # uvicorn re-raises the signals it caught once it has stopped: they must not end the
        # process before the services have stopped
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)  # from here, a signal ends the process at once
        stopped = await asyncio.gather(*(app.stop() for app in started), return_exceptions=True)
        for (name, _), result in zip(SERVICES, stopped, strict=False):
            if isinstance(result, BaseException):
                log.error("the %s service did not stop cleanly", name, exc_info=result)
    if not server.started:
        sys.exit(1)  # the edge could not start (its error is logged)


if __name__ == "__main__":
    main()
