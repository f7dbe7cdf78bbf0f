"""A provider whose words pass a scrubber before anyone sees them.

A provider can send a credential back: a gateway's 401 that quotes the ``Authorization``
header, a model that repeats a key it was shown. :class:`ScrubbedProvider` wraps any
:class:`~parley.llm.port.Provider` and passes through ``scrub`` (e.g.
``parley.identity.Scrubber.from_environment()``) every text delta, the string values of
every tool call's arguments, and the message and partial text of every
:class:`~parley.llm.errors.ProviderError` it raises. The error's chained SDK exception
(whose text may quote the response body) is dropped.

A secret split across text deltas is caught too: the text's tail that could be the start
of a known secret or of a credential shape (``sk-…``, ``Bearer …``, ``password: …``) is held
back until the next delta completes or clears it (at most :data:`MAX_HELD` characters), and
released before any other delta, at the end and before an error. What is held never begins
inside a whole known secret (another may start with its last characters). Ordinary text passes at
once. Whoever joins the deltas may scrub the joined text again (the runtime does).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from parley.llm._base import collect
from parley.llm.errors import ProviderError
from parley.llm.errors import StreamInterrupted
from parley.llm.port import ChatRequest
from parley.llm.port import Completion
from parley.llm.port import Delta
from parley.llm.port import Provider
from parley.llm.port import TextDelta
from parley.llm.port import ToolCall
from parley.llm.port import ToolCallDelta
from parley.llm.port import ToolCallDone

__all__ = ["MAX_HELD", "ScrubbedProvider", "scrub_error", "scrub_values"]

Scrub = Callable[[str], str]
MAX_HELD = 1024
"""Longest text tail held back because it could be the start of a secret."""
_OPEN_CREDENTIAL = re.compile(
    r"(?:\b(?:sk-|pk_|pt_|eyJ|gh[pousr]_|xox[abposr]-|AKIA|AIza)[A-Za-z0-9._~+/=-]*"
    r"|\b(?:Bearer|Basic)\s*[A-Za-z0-9._~+/=-]*"
    r"|\b(?:x-api-key|api[-_]?key|x-caxton-token|access[-_]token|client[-_]secret|password"
    r"|authorization)[\"']?\s*[:=]?\s*[\"']?[^\s\"',;&]*)$",
    re.I,
)
"""A credential shape still open at the end of the text (its end may be in the next delta)."""


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

    def __init__(self, provider: Provider, scrub: Scrub, secrets: Iterable[str] = ()) -> None:
        """``scrub`` removes secrets from a text; ``secrets`` are the known ones it removes
        (to hold back a text's tail that begins one)."""
        self.provider = provider
        self.scrub = scrub
        self.secrets = tuple(sorted({secret for secret in secrets if secret}))
        self.name = provider.name

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """The provider's stream, scrubbed."""
        held = ""
        try:
            async for delta in self.provider.stream(request):
                if isinstance(delta, TextDelta):
                    text = held + delta.text  # held raw: its secret may not be whole yet
                    cut = self._whole(text, len(text) - self._open_tail(text))
                    held = text[cut:]
                    if cut:
                        yield TextDelta(self.scrub(text[:cut]))
                    continue
                if held:
                    yield TextDelta(self.scrub(held))
                    held = ""
                yield self._scrubbed(delta)
        except ProviderError as err:
            if held:  # the text so far belongs to the partial answer
                yield TextDelta(self.scrub(held))
            raise scrub_error(err, self.scrub) from None
        if held:
            yield TextDelta(self.scrub(held))

    def _open_tail(self, text: str) -> int:
        """How many characters at the end of ``text`` could begin a secret."""
        tail = 0
        if (shape := _OPEN_CREDENTIAL.search(text)) is not None:
            tail = len(text) - shape.start()
        for secret in self.secrets:
            for size in range(min(len(secret) - 1, len(text)), tail, -1):
                if text.endswith(secret[:size]):
                    tail = size
                    break
        return tail if tail <= MAX_HELD else 0

    def _whole(self, text: str, cut: int) -> int:
        """``cut``, moved back before any known secret it would split: a tail held for one
        secret (or shape) may begin inside another that is whole, and scrubbing the text
        before the cut would then miss it."""
        moved = True
        while moved and cut:
            moved = False
            for secret in self.secrets:
                start = text.find(secret, max(0, cut - len(secret) + 1))
                if -1 < start < cut < start + len(secret):
                    cut, moved = start, True
        return cut

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
