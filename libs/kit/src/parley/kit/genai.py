"""Spans of model and tool calls, named and attributed by the OpenTelemetry GenAI semantic
conventions, so that Jaeger shows where a turn spent its time and its tokens.

- :func:`chat_span` — ``chat {model}`` (CLIENT): ``gen_ai.operation.name``,
  ``gen_ai.provider.name``, ``gen_ai.request.*``; :func:`record_response` adds
  ``gen_ai.response.model``, ``gen_ai.response.finish_reasons`` and ``gen_ai.usage.*``.
- :func:`tool_span` — ``execute_tool {name}`` (INTERNAL): ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id``, ``gen_ai.tool.type``.

Prompt, completion, tool arguments and tool results are recorded only when
:func:`record_content` was switched on (``PARLEY_TRACE_CONTENT=true``): they are what users
typed and what tools read, and a trace backend is rarely as guarded as the event store.
"""

import json
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode

__all__ = ["chat_span", "mark_failed", "record_content", "record_response", "tool_span"]

_tracer = trace.get_tracer("parley.genai")
_content = False


def record_content(enabled: bool) -> None:
    """Record prompt and completion text on spans from now on (off by default)."""
    global _content
    _content = enabled


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@contextmanager
def chat_span(
    provider: str,
    model: str,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    messages: Sequence[Any] = (),
) -> Iterator[Span]:
    """A span around one model call; an exception leaving it marks the span an error."""
    attributes = _attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.top_p": top_p,
        }
    )
    if _content and messages:
        attributes["gen_ai.input.messages"] = msgspec.json.encode(list(messages)).decode()
    with _tracer.start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def record_response(
    span: Span,
    *,
    model: str,
    finish_reason: str,
    input_tokens: int,
    output_tokens: int,
    text: str = "",
) -> None:
    """What the model answered, on its :func:`chat_span`."""
    span.set_attributes(
        {
            "gen_ai.response.model": model,
            "gen_ai.response.finish_reasons": [finish_reason],
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
        }
    )
    if _content and text:
        span.set_attribute("gen_ai.output.messages", text)


@contextmanager
def tool_span(name: str, call_id: str, arguments: dict[str, Any]) -> Iterator[Span]:
    """A span around one tool call."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }
    if _content:
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments, default=str)
    with _tracer.start_as_current_span(
        f"execute_tool {name}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


def mark_failed(span: Span, error_type: str, message: str) -> None:
    """A call that ended in a failure the caller handled (no exception left the span)."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))
