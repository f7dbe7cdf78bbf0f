"""``provider_for(name, settings)``: the one place a provider name becomes an adapter.

The SDK-backed adapters are imported when first used: the Anthropic and OpenAI SDKs take
seconds of CPU to import (most of a runtime's start-up), and a process that never calls them
should not wait for them. :func:`preload` imports them ahead, from a thread at start-up, for
the providers a process is configured for, so that no model call waits for an import on the
event loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from collections.abc import Iterable

from parley.llm.errors import ProviderBadRequest
from parley.llm.offline import OfflineProvider
from parley.llm.port import Provider
from parley.llm.settings import ProviderSettings

__all__ = ["PROVIDERS", "SDK_ADAPTERS", "preload", "provider_for"]

SDK_ADAPTERS = {
    "anthropic": "parley.llm.anthropic",
    "openai": "parley.llm.openai",
    "openai_compatible": "parley.llm.openai",
}
"""The module of each SDK-backed adapter (imported on first use, or by :func:`preload`)."""


def _anthropic(settings: ProviderSettings) -> Provider:
    from parley.llm.anthropic import AnthropicProvider

    return AnthropicProvider(settings)


def _openai(settings: ProviderSettings) -> Provider:
    from parley.llm.openai import OpenAIProvider

    return OpenAIProvider(settings)


def _compatible(settings: ProviderSettings) -> Provider:
    if not settings.base_url:
        raise ProviderBadRequest(
            "openai_compatible",
            "set base_url (e.g. http://127.0.0.1:11434/v1 for Ollama) for openai_compatible",
        )
    from parley.llm.openai import OpenAIProvider

    return OpenAIProvider(settings, name="openai_compatible")


PROVIDERS: dict[str, Callable[[ProviderSettings], Provider]] = {
    "offline": lambda _settings: OfflineProvider(),
    "anthropic": _anthropic,
    "openai": _openai,
    "openai_compatible": _compatible,
}


def preload(names: Iterable[str]) -> None:
    """Import the adapters (and SDKs) of the providers ``names`` now (blocking: call it from
    a thread)."""
    for module in sorted({SDK_ADAPTERS[name] for name in names if name in SDK_ADAPTERS}):
        importlib.import_module(module)


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
