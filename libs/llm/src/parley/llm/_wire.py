"""What both provider wires do alike: gather streamed tool calls, send sampling params."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from parley.llm.port import ChatRequest
from parley.llm.port import ToolCall
from parley.llm.port import ToolCallDelta
from parley.llm.port import ToolCallDone

__all__ = ["ToolCalls", "sampling"]


class ToolCalls:
    """The tool calls a stream builds by index: an id and a name, then argument fragments."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[list[str | None], list[str]]] = {}

    def __contains__(self, index: int) -> bool:
        return index in self._calls

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._calls))

    def fragment(
        self, index: int, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> ToolCallDelta:
        """Note a piece of call ``index`` (the first id and name stick); the delta to yield."""
        head, parts = self._calls.setdefault(index, ([None, None], []))
        head[0], head[1] = head[0] or id, head[1] or name
        parts.append(arguments)
        return ToolCallDelta(index, id, name, arguments)

    def done(self, index: int, *, objects_only: bool = False) -> ToolCallDone:
        """Call ``index`` complete, its arguments decoded (``{}`` when none came).

        Raises:
            json.JSONDecodeError: The arguments are not JSON (or, with ``objects_only``,
                not a JSON object).
        """
        (call_id, name), parts = self._calls.pop(index)
        text = "".join(parts)
        args = json.loads(text or "{}")
        if objects_only and not isinstance(args, dict):
            raise json.JSONDecodeError("arguments must be an object", text, 0)
        return ToolCallDone(ToolCall(call_id or f"call_{index}", name or "", args))


def sampling(request: ChatRequest, stop_key: str) -> dict[str, Any]:
    """The sampling params the request sets (``stop`` goes under the wire's ``stop_key``)."""
    params: dict[str, Any] = {}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.stop:
        params[stop_key] = list(request.stop)
    return params
