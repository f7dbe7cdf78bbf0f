"""Embeddings from an OpenAI(-compatible) provider's ``/embeddings``, through the real SDK.

Anthropic has no embeddings API and the offline provider none either: for them (and for an
OpenAI-compatible server without a configured embedding model) :func:`embeddings_for` gives
None, and memory uses its deterministic local embedder. The OpenAI SDK is imported when the
first embeddings are made (see :mod:`parley.llm.factory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx2

from parley.llm.errors import ProviderError
from parley.llm.settings import ProviderSettings

if TYPE_CHECKING:
    from parley.llm.openai import OpenAIProvider

__all__ = ["DEFAULT_MODELS", "OpenAIEmbeddings", "embeddings_for"]

DEFAULT_MODELS = {"openai": "text-embedding-3-small"}
"""The embedding model of a provider that has one when none is configured."""


class OpenAIEmbeddings:
    """One provider's embedding model: ``embed(texts)`` is one ``embeddings.create`` call.

    Args:
        settings: Endpoint, key and timeouts of the provider (as for its chat adapter).
        provider: ``openai`` or ``openai_compatible`` (chooses the key's env var).
        model: The embedding model.
    """

    def __init__(self, settings: ProviderSettings, *, provider: str, model: str) -> None:
        from parley.llm.openai import OpenAIProvider

        self.provider, self.model = provider, model
        self._adapter: OpenAIProvider = OpenAIProvider(settings, name=provider)

    @property
    def name(self) -> str:
        """The vector space's name: ``<provider>:<model>``."""
        return f"{self.provider}:{self.model}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order.

        Raises:
            ProviderError: The call failed (its status or failure kind, never its body).
        """
        import openai  # loaded with the adapter already

        client = self._adapter._get_client()
        try:
            response = await client.embeddings.create(model=self.model, input=list(texts))
        except openai.APIStatusError as err:
            raise ProviderError(self.provider, f"embeddings: HTTP {err.status_code}") from None
        except (openai.OpenAIError, httpx2.TransportError) as err:
            raise ProviderError(self.provider, f"embeddings: {type(err).__name__}") from None
        ordered = sorted(response.data, key=lambda item: item.index)
        if len(ordered) != len(texts):
            raise ProviderError(self.provider, "embeddings: not one vector per text")
        return [list(item.embedding) for item in ordered]

    async def aclose(self) -> None:
        """Close the SDK client."""
        await self._adapter.aclose()


def embeddings_for(
    provider: str, settings: ProviderSettings, model: str | None
) -> OpenAIEmbeddings | None:
    """The embeddings of ``provider``: ``model`` (or its default), or None where it has none."""
    if provider not in ("openai", "openai_compatible"):
        return None
    chosen = model or DEFAULT_MODELS.get(provider)
    return OpenAIEmbeddings(settings, provider=provider, model=chosen) if chosen else None
