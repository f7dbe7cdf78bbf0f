"""``python -m parley.edge``: serve the edge with uvicorn until SIGTERM/SIGINT
(:mod:`parley.edge.server`: the first signal drains, a second skips the wait)."""

from parley.edge.app import create_app
from parley.edge.server import edge_server
from parley.edge.settings import load_settings
from parley.kit.logs import configure_logging
from parley.kit.loop import tune_gc
from parley.kit.settings import SettingsError
from parley.kit.telemetry import setup_tracing


def main() -> None:
    """Run the edge on ``PARLEY_EDGE_HOST``:``PARLEY_EDGE_PORT``."""
    try:
        settings = load_settings()
        app = create_app(settings)
    except SettingsError as exc:
        raise SystemExit(f"parley edge: {exc}") from None
    configure_logging("edge", settings.log_level)
    setup_tracing("edge", settings.otlp_endpoint, record_content=settings.trace_content)
    server = edge_server(settings, app)
    tune_gc()
    server.run()


if __name__ == "__main__":
    main()
