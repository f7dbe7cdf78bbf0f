"""What the provider adapter tests share (a module of its own: ``from conftest import``
finds whichever ``conftest`` pytest loaded last when several test folders run together)."""

from wire_server import WireServer

from parley.llm import ProviderSettings

SECRET_KEY = "sk-test-SECRET-0123456789"
"""The key the adapters send to the wire server; it must never be shown."""


def settings_for(wire: WireServer, api: str, **overrides: object) -> ProviderSettings:
    """Fast test settings: 0.5 s idle timeout, tiny backoff, key set explicitly."""
    values: dict[str, object] = {
        "api_key": SECRET_KEY,
        "base_url": wire.url if api == "anthropic" else f"{wire.url}/v1",
        "connect_timeout": 1.0,
        "idle_timeout": 0.5,
        "backoff": 0.01,
        "retry_after_cap": 1.0,
        "breaker_threshold": 3,
        "breaker_cooldown": 60.0,
    }
    values.update(overrides)
    return ProviderSettings(**values)  # type: ignore[arg-type]
