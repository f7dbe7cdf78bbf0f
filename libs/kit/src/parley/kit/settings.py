"""Settings from ``PARLEY_*`` environment variables, typed by a msgspec Struct."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import TypeVar
from urllib.parse import quote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import msgspec

__all__ = ["ServiceSettings", "SettingsError", "from_env"]

S = TypeVar("S", bound=msgspec.Struct)


class SettingsError(ValueError):
    """An environment variable has a value its setting cannot take."""


def from_env(cls: type[S], environ: Mapping[str, str] | None = None, prefix: str = "PARLEY_") -> S:
    """Build ``cls`` from ``PARLEY_<FIELD>`` variables; unset ones keep their defaults.

    Raises:
        SettingsError: naming the variable and what it must be.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        raw = env.get(prefix + field.name.upper())
        if raw is not None:
            values[field.name] = raw
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid {prefix}* setting: {exc}") from exc


class ServiceSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Settings every service shares."""

    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server URL, or a cluster's URLs separated by commas (`PARLEY_NATS_URL`, e.g.
    `nats://10.0.0.1:4222,nats://10.0.0.2:4222`): the client reconnects to another when one
    goes."""
    nats_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Copies JetStream keeps of every stream, KV bucket and object store Parley creates
    (`PARLEY_NATS_REPLICAS`): 1 on one server, 3 on a three-node cluster (at most the
    number of nodes)."""
    nats_user: str | None = None
    """NATS user to connect as (`PARLEY_NATS_USER`, e.g. `parley`); needs
    `PARLEY_NATS_PASSWORD_FILE`."""
    nats_password_file: str | None = None
    """File holding that user's password (`PARLEY_NATS_PASSWORD_FILE`); the password itself
    never goes into an environment variable or a log."""
    max_in_flight: int = 64
    """Messages each subscriber handles at once (`PARLEY_MAX_IN_FLIGHT`); FastStream's
    default of one at a time caps a service at one command per event-store round trip."""
    log_level: str = "INFO"
    """Log level (`PARLEY_LOG_LEVEL`)."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318 (`PARLEY_OTLP_ENDPOINT`)."""
    trace_content: bool = False
    """Record prompt, completion and tool text on model and tool spans
    (`PARLEY_TRACE_CONTENT`); off, spans carry sizes, tokens and names only."""
    eventstore: str = "jetstream"
    """Event store backend: `jetstream` or `kurrentdb` (`PARLEY_EVENTSTORE`)."""
    kurrentdb_url: str | None = None
    """KurrentDB connection string (`PARLEY_KURRENTDB_URL`)."""
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    """Port of a service's `/metrics` and `/healthz` (`PARLEY_METRICS_PORT`); unset: the
    service's own default (`parley.kit.metrics.DEFAULT_PORTS`); 0: none. The edge serves
    `/metrics` on its HTTP port instead."""

    def __post_init__(self) -> None:
        if not self.nats_servers():
            raise SettingsError("PARLEY_NATS_URL names no server")
        if (self.nats_user is None) != (self.nats_password_file is None):
            raise SettingsError(
                "PARLEY_NATS_USER and PARLEY_NATS_PASSWORD_FILE must be set together"
            )
        if self.nats_password_file is not None:
            self.nats_password()  # unreadable or empty: refuse to start

    def nats_password(self) -> str | None:
        """The NATS password read from `nats_password_file` (None without a user).

        Raises:
            SettingsError: the file is missing, unreadable or empty.
        """
        if self.nats_password_file is None:
            return None
        try:
            password = Path(self.nats_password_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"PARLEY_NATS_PASSWORD_FILE {self.nats_password_file!r} cannot be read: "
                f"{type(exc).__name__}"
            ) from None
        if not password:
            raise SettingsError(f"PARLEY_NATS_PASSWORD_FILE {self.nats_password_file!r} is empty")
        return password

    def nats_servers(self) -> list[str]:
        """The server URLs of `nats_url` (comma-separated)."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    def nats_connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` (``servers``, and ``user``/``password``
        when a user is set): ``await nats.connect(**settings.nats_connect_options(),
        name=...)``."""
        options: dict[str, Any] = {"servers": self.nats_servers()}
        password = self.nats_password()
        if password is not None:
            options.update(user=self.nats_user, password=password)
        return options

    def nats_url_with_credentials(self) -> str:
        """`nats_url` with the user and password in each of its URLs, for clients that take
        only URLs (FastStream's broker, ``open_store`` without a connection). Never show it."""
        password = self.nats_password()
        if password is None or self.nats_user is None:
            return self.nats_url
        userinfo = f"{quote(self.nats_user, safe='')}:{quote(password, safe='')}"
        with_credentials = []
        for url in self.nats_servers():
            parts = urlsplit(url)
            host = parts.netloc.rpartition("@")[2]
            with_credentials.append(urlunsplit(parts._replace(netloc=f"{userinfo}@{host}")))
        return ",".join(with_credentials)
