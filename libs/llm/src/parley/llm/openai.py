"""OpenAI Chat Completions adapter; with a ``base_url`` it serves any OpenAI-compatible server.

Ollama, vLLM and llama.cpp's server speak the same wire, so ``openai_compatible`` is this
adapter with ``settings.base_url`` set and its key from ``PARLEY_OPENAI_COMPATIBLE_API_KEY``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import httpx2
import openai

from parley.llm._base import GuardedProvider
from parley.llm._mapping import error_for_status
from parley.llm._openai_wire import deltas
from parley.llm._openai_wire import params
from parley.llm.breaker import CircuitBreaker
from parley.llm.errors import ProviderAuthError
from parley.llm.errors import ProviderBadRequest
from parley.llm.errors import ProviderError
from parley.llm.port import ChatRequest
from parley.llm.port import Delta
from parley.llm.settings import KEY_VARIABLES
from parley.llm.settings import ProviderSettings
from parley.llm.settings import resolve_api_key

__all__ = ["OpenAIProvider"]


class OpenAIProvider(GuardedProvider):
    """Streams Chat Completions (``stream=True``, usage in the last chunk).

    Args:
        settings: Endpoint, key and timeouts.
        breaker: Circuit breaker to share; one is made per provider when omitted.
        name: ``openai`` or ``openai_compatible`` (chooses the key's env var).
    """

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        name: str = "openai",
    ) -> None:
        self.name = name
        super().__init__(settings or ProviderSettings(), breaker)
        self._client: openai.AsyncOpenAI | None = None

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            s = self.settings
            key = resolve_api_key(self.name, s, KEY_VARIABLES.get(self.name, "OPENAI_API_KEY"))
            if key is None and self.name == "openai":
                raise ProviderAuthError(
                    self.name, "no API key: set OPENAI_API_KEY or PARLEY_OPENAI_API_KEY_FILE"
                )
            # local OpenAI-compatible servers often need no key; the SDK insists on one
            api_key = key.reveal() if key else "unused"
            self._client = openai.AsyncOpenAI(**self._sdk_options(api_key))
        return self._client

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[Delta, None]:
        try:
            chunks = await self._get_client().chat.completions.create(
                **params(request, self.name), stream=True, stream_options={"include_usage": True}
            )
            async with chunks:
                async for delta in deltas(chunks):
                    yield delta
        except openai.APIStatusError as err:
            body = err.body if isinstance(err.body, dict) else {}
            error_type = body.get("type") or body.get("code")
            reason = body.get("message") or None
            raise error_for_status(
                self.name, err.status_code, error_type, reason, err.response.headers
            ) from None
        except (openai.APIConnectionError, httpx2.TransportError) as err:
            timed_out = isinstance(err, openai.APITimeoutError | httpx2.TimeoutException)
            raise self._unreachable(err, timed_out=timed_out) from None
        except openai.APIError as err:  # an error event inside a started stream
            body = err.body if isinstance(err.body, dict) else {}
            error_type = body.get("type") or body.get("code") or "stream_error"
            raise error_for_status(self.name, 200, error_type, err.message, {}) from None
        except json.JSONDecodeError:
            raise ProviderBadRequest(self.name, "tool call arguments are not JSON") from None
        except (openai.OpenAIError, ValueError) as err:
            raise ProviderError(self.name, f"bad response: {type(err).__name__}") from None
