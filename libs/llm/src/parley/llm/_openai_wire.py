"""OpenAI Chat Completions wire: request params from the port, chunks to deltas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from parley.llm._wire import ToolCalls
from parley.llm._wire import sampling
from parley.llm.port import ChatRequest
from parley.llm.port import Delta
from parley.llm.port import Finished
from parley.llm.port import StopReason
from parley.llm.port import TextDelta
from parley.llm.port import Usage

__all__ = ["deltas", "params"]

_STOP: dict[str, StopReason] = {"stop": "end", "tool_calls": "tool_calls", "length": "max_tokens"}


async def deltas(chunks: Any) -> AsyncIterator[Delta]:
    calls = ToolCalls()
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
                name = frag.function.name if frag.function else None
                args = (frag.function.arguments if frag.function else None) or ""
                yield calls.fragment(frag.index, frag.id, name, args)
            if choice.finish_reason:
                stop = _STOP.get(choice.finish_reason, "other")
    for index in calls:
        yield calls.done(index, objects_only=True)
    yield Finished(stop, usage)


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
    return params | sampling(request, "stop")
