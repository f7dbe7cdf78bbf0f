"""The provider port: request/response Structs, stream deltas and the ``Provider`` protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable

import msgspec

__all__ = [
    "ChatRequest",
    "Completion",
    "Delta",
    "Finished",
    "Message",
    "Provider",
    "Role",
    "StopReason",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolDef",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["end", "tool_calls", "max_tokens", "stop_sequence", "other"]


class ToolCall(msgspec.Struct, frozen=True):
    """A tool call the model asked for.

    Attributes:
        id: Provider-assigned call id; a ``tool`` message answers it by this id.
        name: Name of the tool.
        arguments: Decoded JSON arguments.
    """

    id: str
    name: str
    arguments: dict[str, Any] = {}


class Message(msgspec.Struct, frozen=True):
    """One message of the conversation.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: Text of the message (for ``tool``: the tool's result).
        tool_calls: Calls an ``assistant`` message made.
        tool_call_id: The call a ``tool`` message answers.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


class ToolDef(msgspec.Struct, frozen=True):
    """A tool offered to the model.

    Attributes:
        name: Tool name the model calls it by.
        description: What the tool does, for the model.
        parameters: JSON Schema of the arguments object.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})


class Usage(msgspec.Struct, frozen=True):
    """Token usage of one call.

    Attributes:
        input_tokens: Tokens read by the model.
        output_tokens: Tokens generated.
    """

    input_tokens: int = 0
    output_tokens: int = 0


class ChatRequest(msgspec.Struct, frozen=True):
    """One model call.

    Attributes:
        model: Provider model id.
        messages: Conversation so far (``system`` messages are folded into ``system``).
        system: System prompt.
        tools: Tools the model may call.
        temperature: Sampling temperature.
        max_tokens: Output token cap.
        top_p: Nucleus sampling mass.
        stop: Stop sequences.
    """

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolDef, ...] = ()
    temperature: float | None = None
    max_tokens: int = 1024
    top_p: float | None = None
    stop: tuple[str, ...] = ()


class TextDelta(msgspec.Struct, frozen=True, tag="text"):
    """A piece of the answer's text."""

    text: str


class ToolCallDelta(msgspec.Struct, frozen=True, tag="tool_call_delta"):
    """A fragment of a tool call's JSON arguments, as streamed."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_fragment: str = ""


class ToolCallDone(msgspec.Struct, frozen=True, tag="tool_call"):
    """A complete tool call, arguments assembled and decoded."""

    call: ToolCall


class Finished(msgspec.Struct, frozen=True, tag="finished"):
    """The last delta of a successful stream."""

    stop_reason: StopReason
    usage: Usage


Delta = TextDelta | ToolCallDelta | ToolCallDone | Finished


class Completion(msgspec.Struct, frozen=True):
    """A whole answer, collected from a stream."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    stop_reason: StopReason


@runtime_checkable
class Provider(Protocol):
    """A model provider behind one small interface."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        """Stream the answer; the last delta is ``Finished`` or an error is raised."""
        ...

    async def complete(self, request: ChatRequest) -> Completion:
        """Return the whole answer, built on ``stream``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
