"""Anthropic Messages API adapter (``anthropic`` SDK, async client, raw SSE events)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anthropic
import httpx2

from parley.llm._anthropic_wire import deltas
from parley.llm._anthropic_wire import params
from parley.llm._base import GuardedProvider
from parley.llm._mapping import error_for_status
from parley.llm.breaker import CircuitBreaker
from parley.llm.errors import ProviderAuthError
from parley.llm.errors import ProviderError
from parley.llm.port import ChatRequest
from parley.llm.port import Delta
from parley.llm.settings import KEY_VARIABLES
from parley.llm.settings import ProviderSettings
from parley.llm.settings import resolve_api_key

__all__ = ["AnthropicProvider"]


class AnthropicProvider(GuardedProvider):
    """Streams Anthropic's Messages API; key from ``ANTHROPIC_API_KEY`` or a secret file."""

    name = "anthropic"

    def __init__(
        self, settings: ProviderSettings | None = None, breaker: CircuitBreaker | None = None
    ) -> None:
        super().__init__(settings or ProviderSettings(), breaker)
        self._client: anthropic.AsyncAnthropic | None = None

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            key = resolve_api_key(self.name, self.settings, KEY_VARIABLES["anthropic"])
            if key is None:
                raise ProviderAuthError(
                    self.name, "no API key: set ANTHROPIC_API_KEY or PARLEY_ANTHROPIC_API_KEY_FILE"
                )
            self._client = anthropic.AsyncAnthropic(**self._sdk_options(key.reveal()))
        return self._client

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[Delta, None]:
        try:
            events = await self._get_client().messages.create(**params(request), stream=True)
            async with events:
                async for delta in deltas(events):
                    yield delta
        except anthropic.APIStatusError as err:
            raise error_for_status(
                self.name, err.status_code, err.type, err.api_message, err.response.headers
            ) from None
        except (anthropic.APIConnectionError, httpx2.TransportError) as err:
            timed_out = isinstance(err, anthropic.APITimeoutError | httpx2.TimeoutException)
            raise self._unreachable(err, timed_out=timed_out) from None
        except (anthropic.AnthropicError, ValueError) as err:
            raise ProviderError(self.name, f"bad response: {type(err).__name__}") from None
