"""Provider settings and credential resolution (env var or secret file, never logged)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

__all__ = ["KEY_VARIABLES", "ProviderSettings", "Secret", "configured", "resolve_api_key"]

KEY_VARIABLES = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openai_compatible": "PARLEY_OPENAI_COMPATIBLE_API_KEY",
}
"""The environment variable of each SDK-backed provider's key."""


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks, errors)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret, for handing to the SDK only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class ProviderSettings(msgspec.Struct, kw_only=True):
    """How to reach one provider.

    Attributes:
        api_key: The key; when unset, read from the env var or ``api_key_file``.
        api_key_file: Path of a secret file holding the key.
        base_url: Endpoint override (required for ``openai_compatible``).
        connect_timeout: Seconds to establish a connection.
        idle_timeout: Seconds without a byte before a read fails (covers hung streams).
        max_retries: Our retries before the first delta (the SDK's own are off).
        backoff: Base seconds of exponential backoff when no ``retry-after`` is given.
        retry_after_cap: Longest wait between attempts; a longer ``retry-after`` is not
            waited for (the error is raised with its ``retry_after``).
        breaker_threshold: Consecutive failed calls that open the circuit.
        breaker_cooldown: Seconds before a half-open trial call.
    """

    api_key: str | None = None
    api_key_file: str | None = None
    base_url: str | None = None
    connect_timeout: float = 5.0
    idle_timeout: float = 60.0
    max_retries: int = 2
    backoff: float = 0.5
    retry_after_cap: float = 20.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0

    def __repr__(self) -> str:
        shown = {f: getattr(self, f) for f in self.__struct_fields__ if f != "api_key"}
        key = "<set>" if self.api_key else None
        return (
            f"ProviderSettings(api_key={key!r}, "
            + ", ".join(f"{k}={v!r}" for k, v in shown.items())
            + ")"
        )


def resolve_api_key(provider: str, settings: ProviderSettings, env_var: str) -> Secret | None:
    """Find the key: explicit setting, then ``env_var``, then a secret file.

    The file comes from ``settings.api_key_file`` or ``PARLEY_<PROVIDER>_API_KEY_FILE``.

    Args:
        provider: Provider name (``openai_compatible`` → ``PARLEY_OPENAI_COMPATIBLE_…``).
        settings: The provider's settings.
        env_var: Environment variable holding the key.

    Returns:
        The key wrapped in ``Secret``, or ``None`` when none is configured.
    """
    if settings.api_key:
        return Secret(settings.api_key)
    if value := os.environ.get(env_var):
        return Secret(value)
    path = settings.api_key_file or os.environ.get(f"PARLEY_{provider.upper()}_API_KEY_FILE")
    if path:
        return Secret(Path(path).read_text().strip())
    return None


def configured(provider: str, settings: ProviderSettings) -> bool:
    """Whether an endpoint or a key is set for ``provider`` (nothing is read or checked)."""
    variable = KEY_VARIABLES.get(provider)
    return bool(
        settings.base_url
        or settings.api_key
        or settings.api_key_file
        or (variable and os.environ.get(variable))
        or os.environ.get(f"PARLEY_{provider.upper()}_API_KEY_FILE")
    )
