"""A run: model rounds and tool calls, each recorded before the run moves on.

:class:`Run` holds the two step kinds (a model call, a tool call) and replays a step from the
:class:`~parley.aggregates.journal.Journal` when it was recorded before. The strategies in
:mod:`parley.runtime.strategies` compose these steps.
"""

import asyncio
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from typing import Protocol

import msgspec

from parley.aggregates.journal import Journal
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import ModelParams
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.runtime import StepRecorded
from parley.contracts.runtime import ToolCalled
from parley.contracts.runtime import ToolCompleted
from parley.contracts.runtime import ToolFailed
from parley.contracts.runtime import Usage
from parley.contracts.tools import TOOL_CATALOGUE
from parley.kit import genai
from parley.llm import ChatRequest
from parley.llm import Finished
from parley.llm import Message
from parley.llm import Provider
from parley.llm import ProviderError
from parley.llm import StreamInterrupted
from parley.llm import TextDelta
from parley.llm import ToolCall
from parley.llm import ToolCallDone
from parley.llm import ToolDef
from parley.llm import Usage as CallUsage
from parley.llm.scrubbed import scrub_values
from parley.runtime.errors import RuntimeFault
from parley.runtime.tools import ToolContext
from parley.runtime.tools import ToolError
from parley.runtime.tools import run_tool

__all__ = [
    "InputRequired",
    "Meter",
    "Recorder",
    "Run",
    "RunSpec",
    "Sink",
]

DEFAULT_MAX_TOKENS = 1024
TOOL_TIMEOUT_S = 120.0


class Interrupted(Exception):
    """The provider's stream broke after it started; the partial answer is kept."""

    def __init__(self, partial: str, usage: Usage, reason: str) -> None:
        super().__init__(reason)
        self.partial, self.usage, self.reason = partial, usage, reason

    def to_body(self) -> ErrorBody:
        """The error a turn or execution that ends here records."""
        return ErrorBody(
            code=ErrorCode.PROVIDER_ERROR,
            message=f"the provider's stream broke after it started: {self.reason}",
        )


class InputRequired(Exception):
    """The run reached a tool that needs a person's approval."""

    def __init__(self, step: int, call: ToolCall) -> None:
        super().__init__(f"tool {call.name!r} needs approval")
        self.step, self.call = step, call


class Recorder(Protocol):
    """Appends a run's events to its stream (in order, with the expected version)."""

    async def record(self, type: str, payload: msgspec.Struct) -> None:
        """Append one event."""
        ...


class Sink(Protocol):
    """Receives a run's live frames (token deltas, tool calls and results)."""

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Publish one frame; never blocks the run."""
        ...


class Meter(Protocol):
    """Prices calls and enforces the agent's budget."""

    async def before_call(self) -> None:
        """Raise ``RuntimeFault(BUDGET_EXCEEDED)`` when the budget is spent."""
        ...

    async def after_call(self, usage: Usage) -> None:
        """Settle one call's usage."""
        ...

    def price(self, usage: CallUsage, *, estimated: bool = False) -> Usage:
        """The call's usage with its cost."""
        ...


@dataclass
class RunSpec:
    """Everything a run needs, resolved from the agent and the session."""

    run_id: str
    kind: Literal["turn", "execution"]
    provider: Provider
    model: str
    system: str | None
    params: ModelParams
    tools: Sequence[ToolSpec]
    strategy: StrategySpec
    history: tuple[Message, ...]
    input: str
    tool_context: ToolContext
    scrub: Callable[[str], str]
    """Removes known secrets and credential shapes from text a provider or tool sent back."""
    approvals: bool = False
    """Whether a tool needing approval stops the run (executions) or fails the call (chat)."""


@dataclass
class Run:
    """The steps of one run, with replay and recording."""

    spec: RunSpec
    journal: Journal
    recorder: Recorder
    sink: Sink
    meter: Meter
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    held: StepRecorded | None = None
    """A model answer that called no tool, not recorded yet: it is recorded before the
    run's next event or model call (:meth:`record`, :meth:`flush`), or carried by the run's
    end (:meth:`take_held`, ``RunFinished.last_step``)."""

    async def record(self, type: str, payload: msgspec.Struct) -> None:
        """Append one event of the run, after the answer it holds back."""
        await self.flush()
        await self.recorder.record(type, payload)

    async def flush(self) -> None:
        """Record the answer held back, as its own ``*.step_recorded``."""
        if (held := self.take_held()) is not None:
            await self.recorder.record(f"{self._event_prefix}.step_recorded", held)

    def take_held(self) -> StepRecorded | None:
        """The answer held back, for the run's end to carry (none is held after)."""
        held, self.held = self.held, None
        return held

    @property
    def _event_prefix(self) -> str:
        return self.spec.kind

    def tool_defs(self) -> tuple[ToolDef, ...]:
        """The tools offered to the model: exactly those of the definition."""
        defs = []
        for tool in self.spec.tools:
            descriptor = TOOL_CATALOGUE.get(tool.name)
            if descriptor is not None:
                defs.append(ToolDef(tool.name, descriptor.description, descriptor.parameters))
        return tuple(defs)

    async def model(
        self,
        messages: tuple[Message, ...],
        *,
        offer_tools: bool,
        kind: Literal["model", "plan"] = "model",
        system_suffix: str = "",
    ) -> StepRecorded:
        """One model call (or its recorded answer)."""
        await self.flush()  # every answer is recorded before the next call
        self.steps += 1
        step = self.steps
        if (recorded := self.journal.models.get(step)) is not None:
            if recorded.text:
                await self.sink.emit("token", {"text": recorded.text, "replayed": True})
            self._add_usage(recorded.usage)
            return recorded
        await self.meter.before_call()
        spec = self.spec
        system = (spec.system or "") + system_suffix or None
        request = ChatRequest(
            model=spec.model,
            messages=messages,
            system=system,
            tools=self.tool_defs() if offer_tools else (),
            temperature=spec.params.temperature,
            max_tokens=spec.params.max_tokens or DEFAULT_MAX_TOKENS,
            top_p=spec.params.top_p,
        )
        with genai.chat_span(
            spec.provider.name,
            spec.model,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            messages=messages,
        ) as span:
            recorded, usage = await self._call(request, step, kind)
            genai.record_response(
                span,
                model=spec.model,  # the adapters do not report another
                finish_reason=recorded.stop_reason or "other",
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                text=recorded.text,
            )
        self._add_usage(usage)
        await self.meter.after_call(usage)
        return recorded

    async def _call(
        self, request: ChatRequest, step: int, kind: Literal["model", "plan"]
    ) -> tuple[StepRecorded, Usage]:
        """Stream the model's answer to the client and record it as the run's step."""
        spec = self.spec
        started = time.monotonic()
        parts: list[str] = []
        calls: list[ToolCall] = []
        finished: Finished | None = None
        try:
            async for delta in spec.provider.stream(request):
                if isinstance(delta, TextDelta):
                    parts.append(delta.text)
                    await self.sink.emit("token", {"text": delta.text})
                elif isinstance(delta, ToolCallDone):
                    calls.append(delta.call)
                elif isinstance(delta, Finished):
                    finished = delta
        except StreamInterrupted as exc:
            partial = spec.scrub("".join(parts) or exc.partial_text)
            usage = self.meter.price(
                exc.usage or _estimate(request, partial), estimated=exc.usage is None
            )
            self._add_usage(usage)
            await self.meter.after_call(usage)
            raise Interrupted(partial, usage, spec.scrub(exc.message)) from exc
        except ProviderError as exc:
            raise RuntimeFault(
                ErrorCode.PROVIDER_ERROR,
                spec.scrub(f"{exc.provider}: {exc.message}"),
                retryable=exc.retryable,
            ) from exc
        if finished is None:  # a provider that ended without its last frame
            usage = self.meter.price(_estimate(request, "".join(parts)), estimated=True)
            stop = "other"
        else:
            usage, stop = self.meter.price(finished.usage), finished.stop_reason
        recorded = StepRecorded(
            run_id=spec.run_id,
            step=step,
            kind=kind,
            text=spec.scrub("".join(parts)),  # a secret split across deltas
            tool_calls=[msgspec.to_builtins(c) for c in calls],
            usage=usage,
            stop_reason=stop,
            provider=spec.provider.name,
            model=spec.model,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        if kind == "model" and not calls:
            self.held = recorded  # no tool to call: recorded with what follows, or the end
        else:  # recorded before any of its tools is called
            await self.recorder.record(f"{self._event_prefix}.step_recorded", recorded)
        return recorded, usage

    async def tool(self, call: ToolCall) -> Message:
        """One tool call (or its recorded result), as the ``tool`` message for the model."""
        self.steps += 1
        step, key = self.steps, (self.steps, call.id)
        summary: dict[str, Any] = {
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
        }
        self.tool_calls.append(summary)
        if (result := self.journal.results.get(key)) is not None:
            await self.sink.emit("tool_result", {**_result_frame(result), "replayed": True})
            summary["result"] = _result_frame(result)
            return _tool_message(call, result)
        with genai.tool_span(call.name, call.id, call.arguments) as span:
            outcome = await self._tool_outcome(step, call)
            if isinstance(outcome, ToolFailed):
                genai.mark_failed(span, outcome.code, outcome.message)
            await self.record(
                "tool.completed" if isinstance(outcome, ToolCompleted) else "tool.failed", outcome
            )
        await self.sink.emit("tool_result", _result_frame(outcome))
        summary["result"] = _result_frame(outcome)
        return _tool_message(call, outcome)

    async def _tool_outcome(self, step: int, call: ToolCall) -> ToolCompleted | ToolFailed:
        spec_by_name = {t.name: t for t in self.spec.tools}
        tool_spec = spec_by_name.get(call.name)
        started = time.monotonic()
        if tool_spec is None:
            return self._failed(
                step, call, "not_available", f"tool {call.name!r} is not in this agent's tools"
            )
        if tool_spec.config.get("requires_approval"):
            return await self._approved(step, call, tool_spec, started)
        return await self._invoke(step, call, tool_spec, started)

    async def _approved(
        self, step: int, call: ToolCall, tool_spec: ToolSpec, started: float
    ) -> ToolCompleted | ToolFailed:
        if not self.spec.approvals:
            return self._failed(
                step,
                call,
                "approval_required",
                f"tool {call.name!r} needs a person's approval; run it as an execution",
            )
        answer = self.journal.inputs.get(call.id)
        if answer is None:
            raise InputRequired(step, call)
        if not answer.approved:
            return self._failed(step, call, "denied", "a person denied this call")
        if answer.response is not None:
            return ToolCompleted(
                run_id=self.spec.run_id,
                step=step,
                call_id=call.id,
                name=call.name,
                content=answer.response,
                data={"answered_by": "person"},
                duration_ms=0.0,
            )
        return await self._invoke(step, call, tool_spec, started)

    async def _invoke(
        self, step: int, call: ToolCall, tool_spec: ToolSpec, started: float
    ) -> ToolCompleted | ToolFailed:
        descriptor = TOOL_CATALOGUE.get(call.name)
        if (step, call.id) in self.journal.called:
            if descriptor is None or not descriptor.idempotent:
                return self._failed(
                    step,
                    call,
                    "interrupted",
                    "the run stopped while this call ran; it is not repeated because the"
                    " tool is not idempotent",
                )
        else:
            await self.record(
                "tool.called",
                ToolCalled(
                    run_id=self.spec.run_id,
                    step=step,
                    call_id=call.id,
                    name=call.name,
                    arguments=call.arguments,
                ),
            )
        await self.sink.emit(
            "tool_call", {"call_id": call.id, "name": call.name, "arguments": call.arguments}
        )
        try:
            async with asyncio.timeout(TOOL_TIMEOUT_S):
                result = await run_tool(
                    call.name, call.arguments, tool_spec.config, self.spec.tool_context
                )
        except ToolError as exc:
            return self._failed(step, call, exc.code, self.spec.scrub(exc.message), started)
        except TimeoutError:
            return self._failed(step, call, "timeout", f"no result in {TOOL_TIMEOUT_S:g}s", started)
        return ToolCompleted(
            run_id=self.spec.run_id,
            step=step,
            call_id=call.id,
            name=call.name,
            content=self.spec.scrub(result.content),
            data=scrub_values(result.data, self.spec.scrub),
            duration_ms=_ms_since(started),
        )

    def _failed(
        self, step: int, call: ToolCall, code: str, message: str, started: float | None = None
    ) -> ToolFailed:
        return ToolFailed(
            run_id=self.spec.run_id,
            step=step,
            call_id=call.id,
            name=call.name,
            code=code,
            message=message,
            duration_ms=_ms_since(started) if started is not None else 0.0,
        )

    def _add_usage(self, usage: Usage | None) -> None:
        if usage is None:
            return
        self.usage = Usage(
            input_tokens=self.usage.input_tokens + usage.input_tokens,
            output_tokens=self.usage.output_tokens + usage.output_tokens,
            cost_usd=round(self.usage.cost_usd + usage.cost_usd, 8),
            estimated=self.usage.estimated or usage.estimated,
            price_unknown=self.usage.price_unknown or usage.price_unknown,
        )


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def _estimate(request: ChatRequest, output: str) -> CallUsage:
    """Rough token counts (4 characters a token) for a stream cut before its usage came."""
    chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
    return CallUsage(input_tokens=max(1, chars // 4), output_tokens=len(output) // 4)


def _result_frame(result: ToolCompleted | ToolFailed) -> dict[str, Any]:
    if isinstance(result, ToolCompleted):
        return {
            "call_id": result.call_id,
            "name": result.name,
            "ok": True,
            "content": result.content,
            "duration_ms": result.duration_ms,
        }
    return {
        "call_id": result.call_id,
        "name": result.name,
        "ok": False,
        "error": {"code": result.code, "message": result.message},
        "duration_ms": result.duration_ms,
    }


def _tool_message(call: ToolCall, result: ToolCompleted | ToolFailed) -> Message:
    if isinstance(result, ToolCompleted):
        content = result.content
    else:
        content = f"error ({result.code}): {result.message}"
    return Message("tool", content, tool_call_id=call.id)
