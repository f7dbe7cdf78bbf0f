"""Settings from ``PARLEY_*`` environment variables, typed by a msgspec Struct."""

import os
from collections.abc import Mapping
from typing import Any, TypeVar

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
    """NATS server URL (`PARLEY_NATS_URL`)."""
    max_in_flight: int = 64
    """Messages each subscriber handles at once (`PARLEY_MAX_IN_FLIGHT`); FastStream's
    default of one at a time caps a service at one command per event-store round trip."""
    log_level: str = "INFO"
    """Log level (`PARLEY_LOG_LEVEL`)."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318 (`PARLEY_OTLP_ENDPOINT`)."""
    eventstore: str = "jetstream"
    """Event store backend: `jetstream` or `kurrentdb` (`PARLEY_EVENTSTORE`)."""
    kurrentdb_url: str | None = None
    """KurrentDB connection string (`PARLEY_KURRENTDB_URL`)."""
