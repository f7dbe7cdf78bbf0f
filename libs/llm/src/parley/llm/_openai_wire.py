"""OpenAI Chat Completions wire: request params from the port, chunks to deltas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from parley.llm.port import (
    ChatRequest,
    Delta,
    Finished,
    StopReason,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    Usage,
)

__all__ = ["deltas", "params"]

_STOP: dict[str, StopReason] = {"stop": "end", "tool_calls": "tool_calls", "length": "max_tokens"}


async def deltas(chunks: Any) -> AsyncIterator[Delta]:
    calls: dict[int, list[Any]] = {}  # index → [id, name, fragments]
    stop: StopReason = "other"
    usage = Usage()
    async for chunk in chunks:
        if chunk.usage is not None:
            usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                yield TextDelta(delta.content)
            for frag in delta.tool_calls or ():
                call = calls.setdefault(frag.index, [None, None, []])
                name = frag.function.name if frag.function else None
                args = (frag.function.arguments if frag.function else None) or ""
                call[0] = call[0] or frag.id
                call[1] = call[1] or name
                call[2].append(args)
                yield ToolCallDelta(frag.index, frag.id, name, args)
            if choice.finish_reason:
                stop = _STOP.get(choice.finish_reason, "other")
    for index in sorted(calls):
        call_id, name, parts = calls[index]
        yield ToolCallDone(ToolCall(call_id or f"call_{index}", name or "", _args(parts)))
    yield Finished(stop, usage)


def _args(parts: list[str]) -> dict[str, Any]:
    value = json.loads("".join(parts) or "{}")
    if not isinstance(value, dict):
        raise json.JSONDecodeError("arguments must be an object", "".join(parts), 0)
    return value


def params(request: ChatRequest, provider: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.role == "tool":
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    "content": m.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        else:
            messages.append({"role": m.role, "content": m.content})
    params: dict[str, Any] = {"model": request.model, "messages": messages}
    # OpenAI deprecated max_tokens; compatible servers (Ollama, llama.cpp) only know it
    cap = "max_completion_tokens" if provider == "openai" else "max_tokens"
    params[cap] = request.max_tokens
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.stop:
        params["stop"] = list(request.stop)
    return params
