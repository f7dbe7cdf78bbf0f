"""A provider whose words pass a scrubber before anyone sees them.

A provider can send a credential back: a gateway's 401 that quotes the ``Authorization``
header, a model that repeats a key it was shown. :class:`ScrubbedProvider` wraps any
:class:`~parley.llm.port.Provider` and passes through ``scrub`` (e.g.
``parley.identity.Scrubber.from_environment()``) every text delta, the string values of
every tool call's arguments, and the message and partial text of every
:class:`~parley.llm.errors.ProviderError` it raises. The error's chained SDK exception
(whose text may quote the response body) is dropped.

A secret split across two text deltas is not caught here; whoever joins the deltas scrubs
the joined text again (the runtime does, before it records the answer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from parley.llm._base import collect
from parley.llm.errors import ProviderError, StreamInterrupted
from parley.llm.port import (
    ChatRequest,
    Completion,
    Delta,
    Provider,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
)

__all__ = ["ScrubbedProvider", "scrub_error", "scrub_values"]

Scrub = Callable[[str], str]


def scrub_values(value: Any, scrub: Scrub) -> Any:
    """``value`` (JSON-like) with every string passed through ``scrub``."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_values(item, scrub) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_values(item, scrub) for item in value)
    return value


def scrub_error(err: ProviderError, scrub: Scrub) -> ProviderError:
    """``err`` with its message (and a stream's partial text and cause) scrubbed, in place,
    and no chained exception."""
    err.message = scrub(err.message)
    err.args = (f"{err.provider}: {err.message}",)
    if isinstance(err, StreamInterrupted):
        err.partial_text = scrub(err.partial_text)
        if err.cause is not None:
            scrub_error(err.cause, scrub)
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    return err


class ScrubbedProvider:
    """``provider`` with every text it returns passed through ``scrub``."""

    def __init__(self, provider: Provider, scrub: Scrub) -> None:
        self.provider = provider
        self.scrub = scrub
        self.name = provider.name

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """The provider's stream, scrubbed."""
        try:
            async for delta in self.provider.stream(request):
                yield self._scrubbed(delta)
        except ProviderError as err:
            raise scrub_error(err, self.scrub) from None

    async def complete(self, request: ChatRequest) -> Completion:
        """The whole answer, collected from :meth:`stream`."""
        return await collect(self.stream(request), self.name)

    async def aclose(self) -> None:
        """Close the wrapped provider."""
        await self.provider.aclose()

    def _scrubbed(self, delta: Delta) -> Delta:
        scrub = self.scrub
        if isinstance(delta, TextDelta):
            return TextDelta(scrub(delta.text))
        if isinstance(delta, ToolCallDone):
            call = delta.call
            arguments = scrub_values(call.arguments, scrub)
            return ToolCallDone(ToolCall(call.id, scrub(call.name), arguments))
        if isinstance(delta, ToolCallDelta):
            return ToolCallDelta(delta.index, delta.id, delta.name, scrub(delta.arguments_fragment))
        return delta
