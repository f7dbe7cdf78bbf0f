"""``provider_for(name, settings)``: the one place a provider name becomes an adapter."""

from __future__ import annotations

from collections.abc import Callable

from parley.llm.anthropic import AnthropicProvider
from parley.llm.errors import ProviderBadRequest
from parley.llm.offline import OfflineProvider
from parley.llm.openai import OpenAIProvider
from parley.llm.port import Provider
from parley.llm.settings import ProviderSettings

__all__ = ["PROVIDERS", "provider_for"]


def _compatible(settings: ProviderSettings) -> Provider:
    if not settings.base_url:
        raise ProviderBadRequest(
            "openai_compatible",
            "set base_url (e.g. http://127.0.0.1:11434/v1 for Ollama) for openai_compatible",
        )
    return OpenAIProvider(settings, name="openai_compatible")


PROVIDERS: dict[str, Callable[[ProviderSettings], Provider]] = {
    "offline": lambda _settings: OfflineProvider(),
    "anthropic": AnthropicProvider,
    "openai": OpenAIProvider,
    "openai_compatible": _compatible,
}


def provider_for(name: str, settings: ProviderSettings | None = None) -> Provider:
    """Build the adapter for ``name`` (``offline``, ``anthropic``, ``openai``,
    ``openai_compatible``).

    Args:
        name: Provider name.
        settings: Endpoint, key and timeouts; defaults suit the public APIs.

    Raises:
        ProviderBadRequest: Unknown name, or ``openai_compatible`` without a ``base_url``.
    """
    try:
        build = PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderBadRequest(name, f"unknown provider; use one of {known}") from None
    return build(settings or ProviderSettings())
