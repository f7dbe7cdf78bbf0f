"""A deterministic provider that needs no key, so the whole stack runs offline.

Rule, applied to the request (same request → same deltas):

1. If the conversation ends with ``tool`` messages (results of the last assistant's calls), it
   answers ``results: <tool>: <result>; <tool>: <result>`` in call order.
2. Else, if the last ``user`` message contains ``call <tool>(<json object>)`` one or more times
   and the tool is among ``request.tools``, it emits those tool calls (ids ``call_0``,
   ``call_1``…) and stops with ``tool_calls``. Calls to tools not offered are ignored.
3. Else it answers ``echo: <last user text>``.

Markers in the system prompt make it misbehave on purpose, so a bad prompt can be tested
(e.g. a canary that must roll back): ``[offline:fail]`` fails every call with
:class:`~parley.llm.errors.ProviderBadRequest` (the turn ends ``failed``, ``PROVIDER_ERROR``);
``[offline:fail_pct=N]`` fails the calls whose last user message hashes (stable) below ``N``
of 100; ``[offline:delay_ms=N]`` waits ``N`` ms (at most 60 000) before answering. One makes
it show what it was given: ``[offline:show_system]`` ends a text answer (rules 1 and 3) with
``\nsystem: <the whole system prompt>``, e.g. to see what a turn added to it.

Text is streamed word by word (each delta is one word with its leading whitespace) and cut at
``max_tokens`` words (stop reason ``max_tokens``). Usage counts whitespace-separated tokens:
input over the system prompt and every message, output over the answer (or the calls' names
and JSON arguments).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from parley.llm._base import collect
from parley.llm.errors import ProviderBadRequest
from parley.llm.port import ChatRequest
from parley.llm.port import Completion
from parley.llm.port import Delta
from parley.llm.port import Finished
from parley.llm.port import Message
from parley.llm.port import StopReason
from parley.llm.port import TextDelta
from parley.llm.port import ToolCall
from parley.llm.port import ToolCallDone
from parley.llm.port import Usage

__all__ = ["OfflineProvider", "parse_calls"]

_CALL = re.compile(r"\bcall\s+([A-Za-z_][\w.-]*)\(")
_FAIL = "[offline:fail]"
_FAIL_PCT = re.compile(r"\[offline:fail_pct=(\d{1,3})\]")
_DELAY = re.compile(r"\[offline:delay_ms=(\d{1,9})\]")
_SHOW_SYSTEM = "[offline:show_system]"
_MAX_DELAY_MS = 60_000


def parse_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Find every ``call <tool>(<json object>)`` in ``text``, in order."""
    found: list[tuple[str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    for match in _CALL.finditer(text):
        rest = text[match.end() :].lstrip()
        try:
            args, end = decoder.raw_decode(rest) if not rest.startswith(")") else ({}, 0)
        except json.JSONDecodeError:
            continue
        if isinstance(args, dict) and rest[end:].lstrip().startswith(")"):
            found.append((match.group(1), args))
    return found


class OfflineProvider:
    """Answers by the module's documented rule; no network, no key."""

    name = "offline"

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """Stream the rule's answer (after the system prompt's markers, if any)."""
        await _misbehave(request)
        input_tokens = _count(request.system or "") + sum(
            _count(m.content) for m in request.messages
        )
        calls = _requested_calls(request)
        if calls:
            for call in calls:
                yield ToolCallDone(call)
            output = sum(_count(c.name) + _count(json.dumps(c.arguments)) for c in calls)
            yield Finished("tool_calls", Usage(input_tokens, output))
            return
        answer = _answer(request.messages)
        if request.system and _SHOW_SYSTEM in request.system:
            answer = f"{answer}\nsystem: {request.system}"
        words = re.findall(r"\s*\S+", answer)
        stop: StopReason = "end"
        if len(words) > request.max_tokens:
            words, stop = words[: request.max_tokens], "max_tokens"
        for word in words:
            yield TextDelta(word)
        yield Finished(stop, Usage(input_tokens, len(words)))

    async def complete(self, request: ChatRequest) -> Completion:
        """Return the rule's whole answer."""
        return await collect(self.stream(request), self.name)

    async def aclose(self) -> None:
        """Nothing to release."""


async def _misbehave(request: ChatRequest) -> None:
    """Wait and fail as the system prompt's ``[offline:…]`` markers say."""
    system = request.system or ""
    if "[offline:" not in system:
        return
    if delay := _DELAY.search(system):
        await asyncio.sleep(min(int(delay.group(1)), _MAX_DELAY_MS) / 1000)
    if _FAIL in system:
        raise ProviderBadRequest(
            "offline", "failed on purpose: the system prompt says [offline:fail]"
        )
    if (pct := _FAIL_PCT.search(system)) and _hash_pct(request.messages) < int(pct.group(1)):
        raise ProviderBadRequest(
            "offline",
            f"failed on purpose: the system prompt says [offline:fail_pct={pct.group(1)}]",
        )


def _hash_pct(messages: tuple[Message, ...]) -> int:
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return int.from_bytes(hashlib.blake2b(last_user.encode(), digest_size=8).digest()) % 100


def _count(text: str) -> int:
    return len(text.split())


def _requested_calls(request: ChatRequest) -> list[ToolCall]:
    if not request.messages or request.messages[-1].role != "user":
        return []
    offered = {t.name for t in request.tools}
    wanted = [c for c in parse_calls(request.messages[-1].content) if c[0] in offered]
    return [ToolCall(f"call_{i}", name, args) for i, (name, args) in enumerate(wanted)]


def _answer(messages: tuple[Message, ...]) -> str:
    results: list[Message] = []
    for m in reversed(messages):
        if m.role != "tool":
            break
        results.insert(0, m)
    if results:
        names = {c.id: c.name for m in messages if m.role == "assistant" for c in m.tool_calls}
        parts = [f"{names.get(r.tool_call_id or '', 'tool')}: {r.content}" for r in results]
        return "results: " + "; ".join(parts)
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return f"echo: {last_user}".rstrip()
