"""The edge's settings, from ``PARLEY_*`` environment variables."""

import ipaddress
import os
from collections.abc import Mapping
from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.models import load_catalogue
from parley.contracts.models_file import CatalogueError
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError

__all__ = ["EdgeSettings", "check_auth", "load_settings"]


class EdgeSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of the edge (HTTP) service."""

    host: str = "127.0.0.1"
    """Interface to listen on (`PARLEY_EDGE_HOST`)."""
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    """TCP port to listen on (`PARLEY_EDGE_PORT`)."""
    max_body_bytes: Annotated[int, Meta(ge=1)] = 1_048_576
    """Largest request body accepted; larger ones are `413 PAYLOAD_TOO_LARGE`."""
    cors_origins: list[str] = []
    """Origins allowed by CORS, comma-separated; empty turns CORS off."""
    allowed_hosts: list[str] = []
    """Accepted `Host` header values, comma-separated, port included (`api.example.com`
    matches only a `Host` without a port; `api.example.com:8443`, `*.example.com`, `host:*`
    any port, `*` any host). Empty: the loopback names with the edge's own port
    (`127.0.0.1:<port>`, `localhost:<port>`, `[::1]:<port>`)."""
    read_your_writes_timeout: Annotated[float, Meta(gt=0)] = 2.0
    """Seconds a command's response waits for the projection to show the change."""
    command_timeout: Annotated[float, Meta(gt=0)] = 5.0
    """Seconds to wait for a service to answer a command (then `504 TIMEOUT`)."""
    chat_timeout: Annotated[float, Meta(gt=0)] = 120.0
    """Seconds a sync chat waits for its turn to end (`PARLEY_EDGE_CHAT_TIMEOUT`)."""
    stream_idle_timeout: Annotated[float, Meta(gt=0)] = 60.0
    """Seconds without a frame before a token stream ends with an `error` event
    (`PARLEY_EDGE_STREAM_IDLE_TIMEOUT`)."""
    max_file_bytes: Annotated[int, Meta(ge=1)] = 524_288
    """Largest session file accepted (`PARLEY_EDGE_MAX_FILE_BYTES`); larger is `413`."""
    # --- authentication (see parley.edge.http.auth) ---
    auth: Literal["on", "off"] = "on"
    """`on`: every route but health and the docs needs a key or token (`PARLEY_AUTH`);
    `off` is allowed only when the edge listens on a loopback address."""
    allowed_origins: list[str] = []
    """Origins a browser WebSocket may come from, comma-separated (`PARLEY_ALLOWED_ORIGINS`);
    the edge's own `http://127.0.0.1:<port>` and `http://localhost:<port>` always may."""
    shutdown_drain_s: Annotated[float, Meta(ge=0, le=60)] = 0.5
    """Seconds between SIGTERM and the edge's shutdown during which `/ready` answers `503`
    while requests are still served (`PARLEY_SHUTDOWN_DRAIN_S`): load balancers stop
    sending first. A second signal stops at once."""
    body_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    """Seconds a request body may take to arrive in full (`PARLEY_BODY_TIMEOUT_S`); then `408`."""
    body_idle_timeout_s: Annotated[float, Meta(gt=0)] = 5.0
    """Seconds a request body may pause between two chunks (`PARLEY_BODY_IDLE_TIMEOUT_S`)."""
    rate_limit: str = "300/1s"
    """Requests per window and principal (`PARLEY_RATE_LIMIT`, `<count>/<n><s|m|h>`; `off`)."""
    model_rate_limit: str = "60/1s"
    """Requests per window and principal to the routes that call models (chat, webhook,
    messages, task distribution, cluster runs) (`PARLEY_MODEL_RATE_LIMIT`; `off`)."""
    quota_max_agents: Annotated[int, Meta(ge=0)] = 1000
    """Most agents one namespace may hold (`PARLEY_QUOTA_MAX_AGENTS`; 0: no limit)."""

    def hosts(self) -> list[str]:
        """The accepted `Host` values: :attr:`allowed_hosts`, else loopback with our port."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        return [f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")]


# Env names that differ from `PARLEY_<FIELD>`: these settings are the edge's own.
_ENV_NAMES = {
    "host": "PARLEY_EDGE_HOST",
    "port": "PARLEY_EDGE_PORT",
    "chat_timeout": "PARLEY_EDGE_CHAT_TIMEOUT",
    "stream_idle_timeout": "PARLEY_EDGE_STREAM_IDLE_TIMEOUT",
    "max_file_bytes": "PARLEY_EDGE_MAX_FILE_BYTES",
}


def load_settings(environ: Mapping[str, str] | None = None) -> EdgeSettings:
    """Build :class:`EdgeSettings` from the environment.

    List settings are comma-separated (`PARLEY_CORS_ORIGINS=https://a.example,https://b`).

    Raises:
        SettingsError: naming the variable and what it must be (also ``PARLEY_MODELS_FILE``,
            the operator's models catalogue).
    """
    try:
        load_catalogue()  # with the operator's PARLEY_MODELS_FILE, checked at start-up
    except CatalogueError as exc:
        raise SettingsError(str(exc)) from None
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(EdgeSettings):
        raw = env.get(_ENV_NAMES.get(field.name, f"PARLEY_{field.name.upper()}"))
        if raw is None:
            continue
        if field.name in ("cors_origins", "allowed_hosts", "allowed_origins"):
            values[field.name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[field.name] = raw
    try:
        return msgspec.convert(values, EdgeSettings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid PARLEY_* setting: {exc}") from exc


def check_auth(settings: EdgeSettings) -> None:
    """Refuse authentication switched off on an address other hosts can reach.

    Raises:
        SettingsError: ``PARLEY_AUTH=off`` with ``PARLEY_EDGE_HOST`` not a loopback address.
    """
    if settings.auth == "on" or _loopback(settings.host):
        return
    raise SettingsError(
        f"PARLEY_AUTH=off is allowed only on a loopback address, but PARLEY_EDGE_HOST is"
        f" {settings.host!r}: anyone who can reach it would own the platform. Switch"
        " authentication on (PARLEY_AUTH=on) or listen on 127.0.0.1"
    )


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
