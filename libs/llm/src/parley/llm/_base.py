"""Shared adapter machinery: bounded retries before the first delta, breaker, interruption."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

import httpx2

from parley.llm.breaker import CircuitBreaker
from parley.llm.errors import ProviderError
from parley.llm.errors import ProviderTimeout
from parley.llm.errors import ProviderUnavailable
from parley.llm.errors import StreamInterrupted
from parley.llm.port import ChatRequest
from parley.llm.port import Completion
from parley.llm.port import Delta
from parley.llm.port import Finished
from parley.llm.port import TextDelta
from parley.llm.port import ToolCall
from parley.llm.port import ToolCallDone
from parley.llm.port import Usage
from parley.llm.settings import ProviderSettings

__all__ = ["GuardedProvider", "collect", "estimate_tokens", "parse_retry_after"]


def estimate_tokens(text: str) -> int:
    """Rough token count (~4 characters per token) for usage we could not get from the wire."""
    return (len(text) + 3) // 4


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date), if given."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


async def collect(stream: AsyncIterator[Delta], provider: str = "unknown") -> Completion:
    """Fold a delta stream into a ``Completion``.

    Raises:
        StreamInterrupted: The stream ended without a ``Finished`` delta.
    """
    text: list[str] = []
    calls: list[ToolCall] = []
    async for delta in stream:
        if isinstance(delta, TextDelta):
            text.append(delta.text)
        elif isinstance(delta, ToolCallDone):
            calls.append(delta.call)
        elif isinstance(delta, Finished):
            return Completion("".join(text), tuple(calls), delta.usage, delta.stop_reason)
    raise StreamInterrupted(provider, "stream ended without a finish", partial_text="".join(text))


class GuardedProvider:
    """Base of the SDK adapters: subclasses implement ``_attempt`` (one HTTP call).

    ``_attempt`` raises typed ``ProviderError``s. Before the first delta they are retried
    (bounded, ``retry-after`` honoured and capped); after it they end the stream as
    ``StreamInterrupted``. Every call passes the provider's circuit breaker.
    """

    name: str

    def __init__(self, settings: ProviderSettings, breaker: CircuitBreaker | None = None) -> None:
        self.settings = settings
        self.breaker = breaker or CircuitBreaker(
            self.name, threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown
        )

    _client: Any = None
    """The SDK client, made on first use by the subclass."""

    def _sdk_options(self, api_key: str) -> dict[str, Any]:
        """Options of the SDK client: our endpoint and timeouts, and no retries of its own."""
        s = self.settings
        return {
            "api_key": api_key,
            "base_url": s.base_url,
            "timeout": httpx2.Timeout(s.idle_timeout, connect=s.connect_timeout),
            "max_retries": 0,  # ours are bounded and stop at the first delta
        }

    def _unreachable(self, err: Exception, *, timed_out: bool) -> ProviderError:
        """A transport failure as the port's error: a timeout, or a failed connection."""
        if timed_out:
            return ProviderTimeout(self.name, "timed out (connect or idle)")
        return ProviderUnavailable(self.name, f"connection failed: {type(err).__name__}")

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _attempt(self, request: ChatRequest) -> AsyncGenerator[Delta, None]:
        """One HTTP call streamed as deltas; SDK failures raised as ``ProviderError``."""
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """Stream the answer with retries, breaker and interruption handling."""
        self.breaker.before_call()
        text: list[str] = []
        started = False
        attempt = 0
        try:
            while True:
                try:
                    async with aclosing(self._attempt(request)) as deltas:
                        async for delta in deltas:
                            started = True
                            if isinstance(delta, TextDelta):
                                text.append(delta.text)
                            yield delta
                    break
                except ProviderError as err:
                    if started:
                        raise self._interrupted(request, "".join(text), err) from err
                    wait = self._wait(err, attempt)
                    if wait is None:
                        raise
                    await asyncio.sleep(wait)
                    attempt += 1
        except ProviderError as err:
            if err.retryable or isinstance(err, StreamInterrupted):
                self.breaker.record_failure()
            else:  # the provider answered; the request (or our key) was at fault
                self.breaker.record_success()
            raise
        except BaseException:
            self.breaker.release()  # cancelled or abandoned by the caller: no verdict
            raise
        self.breaker.record_success()

    async def complete(self, request: ChatRequest) -> Completion:
        """Return the whole answer, collected from ``stream``."""
        return await collect(self.stream(request), self.name)

    def _wait(self, err: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up now."""
        if not err.retryable or attempt >= self.settings.max_retries:
            return None
        if err.retry_after is None:
            return min(self.settings.backoff * 2.0**attempt, self.settings.retry_after_cap)
        # retrying before the provider's retry-after only earns another 429
        return err.retry_after if err.retry_after <= self.settings.retry_after_cap else None

    def _interrupted(self, request: ChatRequest, partial: str, err: ProviderError) -> Exception:
        prompt = (request.system or "") + "".join(m.content for m in request.messages)
        usage = Usage(estimate_tokens(prompt), estimate_tokens(partial))
        return StreamInterrupted(
            self.name,
            f"stream interrupted: {err.message}",
            partial_text=partial,
            usage=usage,
            cause=err,
        )
