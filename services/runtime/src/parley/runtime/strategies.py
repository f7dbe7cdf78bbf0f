"""Strategies: how a run turns an input into an answer with model and tool steps.

- ``reactive``: one model round; while the model asks for tools, run them and ask again, at
  most ``max_tool_rounds`` times (the last round offers no tools, so it must answer).
- ``plan_and_execute``: ask for a numbered plan, then work each step (at most
  ``max_iterations``) as a reactive sub-run, recording each step's result; the answer lists
  the steps' results. A plan is read from lines like ``1. …`` or ``2) …``; an answer with no
  such line is a one-step plan (the input itself).
"""

import re
from collections.abc import Awaitable
from collections.abc import Callable

import msgspec

from parley.contracts.runtime import StepRecorded
from parley.contracts.strategies import PlanAndExecuteConfig
from parley.contracts.strategies import ReactiveConfig
from parley.llm import Message
from parley.llm import ToolCall
from parley.runtime.run_loop import Run

__all__ = ["STRATEGIES", "parse_plan", "run_strategy"]

_PLAN_LINE = re.compile(r"(?m)(?:^|:\s)\s*(\d{1,3})[.)]\s+(\S.*?)\s*$")
PLAN_INSTRUCTION = (
    "\n\nFirst make a plan: answer only with a numbered list of short steps (`1. …`), at most"
    " {n} steps."
)


def parse_plan(text: str, limit: int) -> list[str]:
    """The numbered steps in ``text``, in order, at most ``limit``."""
    return [m.group(2) for m in _PLAN_LINE.finditer(text)][:limit]


async def reactive(run: Run, messages: tuple[Message, ...], max_tool_rounds: int) -> str:
    """Model, then tools while asked, bounded by ``max_tool_rounds``."""
    for round_ in range(max_tool_rounds + 1):
        offer = bool(run.spec.tools) and round_ < max_tool_rounds
        answer = await run.model(messages, offer_tools=offer)
        if not answer.tool_calls:
            return answer.text
        calls = tuple(msgspec.convert(c, ToolCall) for c in answer.tool_calls)
        messages = (*messages, Message("assistant", answer.text, tool_calls=calls))
        for call in calls:
            messages = (*messages, await run.tool(call))
    return answer.text


async def _reactive(run: Run, messages: tuple[Message, ...]) -> str:
    config = msgspec.convert(run.spec.strategy.config, ReactiveConfig)
    return await reactive(run, messages, config.max_tool_rounds)


async def _plan_and_execute(run: Run, messages: tuple[Message, ...]) -> str:
    config = msgspec.convert(run.spec.strategy.config, PlanAndExecuteConfig)
    plan_answer = await run.model(
        messages,
        offer_tools=False,
        kind="plan",
        system_suffix=PLAN_INSTRUCTION.format(n=config.max_iterations),
    )
    steps = parse_plan(plan_answer.text, config.max_iterations) or [run.spec.input]
    await run.sink.emit("plan", {"steps": steps})
    base = (*messages, Message("assistant", plan_answer.text))
    results: list[str] = []
    for index, step in enumerate(steps, start=1):
        prompt = Message("user", f"Step {index}/{len(steps)}: {step}")
        result = await reactive(run, (*base, prompt), config.max_tool_rounds)
        results.append(result)
        if index not in run.journal.plan_steps:
            await run.record(
                f"{run.spec.kind}.step_recorded",
                StepRecorded(
                    run_id=run.spec.run_id,
                    step=run.steps,
                    kind="plan_step",
                    index=index,
                    text=result,
                    plan=[step],
                ),
            )
        base = (*base, prompt, Message("assistant", result))
    return "\n".join(f"{i}. {r}" for i, r in enumerate(results, start=1))


STRATEGIES: dict[str, Callable[[Run, tuple[Message, ...]], Awaitable[str]]] = {
    "reactive": _reactive,
    "plan_and_execute": _plan_and_execute,
}


async def run_strategy(run: Run) -> str:
    """Run the spec's strategy on its history plus input; return the answer."""
    messages = (*run.spec.history, Message("user", run.spec.input))
    return await STRATEGIES[run.spec.strategy.name](run, messages)
