"""Anthropic Messages wire: request params from the port, SSE events to deltas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from parley.llm._wire import ToolCalls
from parley.llm._wire import sampling
from parley.llm.errors import ProviderUnavailable
from parley.llm.port import ChatRequest
from parley.llm.port import Delta
from parley.llm.port import Finished
from parley.llm.port import StopReason
from parley.llm.port import TextDelta
from parley.llm.port import Usage

__all__ = ["deltas", "params"]

_STOP: dict[str, StopReason] = {
    "end_turn": "end",
    "tool_use": "tool_calls",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
}


async def deltas(events: Any) -> AsyncIterator[Delta]:
    input_tokens = output_tokens = 0
    stop: StopReason = "other"
    tools = ToolCalls()
    async for event in events:
        if event.type == "message_start":
            input_tokens = event.message.usage.input_tokens or 0
            output_tokens = event.message.usage.output_tokens or 0
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            yield tools.fragment(event.index, id=block.id, name=block.name)
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta" and event.delta.text:
                yield TextDelta(event.delta.text)
            elif event.delta.type == "input_json_delta" and event.index in tools:
                yield tools.fragment(event.index, arguments=event.delta.partial_json)
        elif event.type == "content_block_stop" and event.index in tools:
            yield tools.done(event.index)
        elif event.type == "message_delta":
            stop = _STOP.get(event.delta.stop_reason or "", "other")
            output_tokens = event.usage.output_tokens or output_tokens
        elif event.type == "message_stop":
            yield Finished(stop, Usage(input_tokens, output_tokens))
            return
    raise ProviderUnavailable("anthropic", "stream ended before message_stop")


def params(request: ChatRequest) -> dict[str, Any]:
    system = [request.system] if request.system else []
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "system":
            system.append(m.content)
        elif m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if messages and messages[-1]["role"] == "user" and messages[-1].get("_results"):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block], "_results": True})
        elif m.role == "assistant" and m.tool_calls:
            content: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            content += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m.tool_calls
            ]
            messages.append({"role": "assistant", "content": content})
        else:
            messages.append({"role": m.role, "content": m.content})
    for msg in messages:
        msg.pop("_results", None)
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    }
    if system:
        params["system"] = "\n\n".join(system)
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return params | sampling(request, "stop_sequences")
