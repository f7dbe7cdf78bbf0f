"""The runtime's pure policies that are not aggregates.

- :func:`effective`: an agent's definition overlaid with a session's settings.
- :func:`running_agent`: the agent a command names, which must exist and run.
- :func:`settings_problems` and :func:`patched`: what a session's settings may be.
- :func:`input_text`: an execution's input as the run's user message.
- :func:`triage`: what a worker does with an execution it took from the queue.
"""

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from parley.aggregates.agent import Agent
from parley.aggregates.execution import Execution
from parley.contracts.errors import ErrorCode
from parley.contracts.memory import agent_memory
from parley.contracts.registry import AgentState
from parley.contracts.registry import Budget
from parley.contracts.registry import ModelParams
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.run_settings import run_settings_problems
from parley.contracts.runtime import SessionPatch
from parley.contracts.runtime import SessionSettings
from parley.runtime.errors import RuntimeFault

__all__ = [
    "Effective",
    "Triage",
    "effective",
    "input_text",
    "patched",
    "raise_problems",
    "running_agent",
    "settings_problems",
    "triage",
]

_PATCH_FIELDS = tuple(f.name for f in msgspec.structs.fields(SessionSettings))


@dataclass(frozen=True)
class Effective:
    """The settings a turn runs with."""

    provider: str
    model: str
    system_prompt: str | None
    persona: str | None
    params: ModelParams
    tools: list[ToolSpec]
    strategy: StrategySpec
    budget: Budget | None
    instances: int
    memory: str | None = None
    """The memory the agent reads and writes (:func:`agent_memory`); None without
    ``memory.enabled``."""


def effective(agent: Agent | None, settings: SessionSettings) -> Effective:
    """An agent's definition with the session's settings on top (or the session alone)."""
    spec = agent.spec if agent is not None else None
    prompt_from_session = settings.system_prompt is not None or settings.persona is not None
    return Effective(
        provider=settings.provider or (spec.provider if spec else "offline"),
        model=settings.model or (spec.model if spec else "offline-1"),
        system_prompt=settings.system_prompt
        if prompt_from_session
        else (spec.system_prompt if spec else None),
        persona=settings.persona if prompt_from_session else (spec.persona if spec else None),
        params=settings.params or (spec.params if spec else ModelParams()),
        tools=settings.tools if settings.tools is not None else (spec.tools if spec else []),
        strategy=settings.strategy or (spec.strategy if spec else StrategySpec()),
        budget=spec.budget if spec else None,
        instances=spec.instances if spec else 1,
        memory=agent_memory(spec, agent.id) if agent and spec and spec.memory.enabled else None,
    )


def running_agent(agent: Agent | None, agent_id: str, namespace: str) -> Agent:
    """The agent (as the directory has it), which must exist in ``namespace`` and run.

    Raises:
        RuntimeFault: ``AGENT_NOT_FOUND`` or ``AGENT_NOT_RUNNING``.
    """
    if agent is None or agent.namespace != namespace:
        raise RuntimeFault(ErrorCode.AGENT_NOT_FOUND, f"no agent {agent_id!r}")
    if agent.state is not AgentState.RUNNING:
        raise RuntimeFault(
            ErrorCode.AGENT_NOT_RUNNING,
            f"agent {agent_id!r} is {agent.state.value}; start or resume it first",
            {"state": agent.state.value},
        )
    return agent


def patched(
    settings: SessionSettings, patch: SessionPatch
) -> tuple[SessionSettings, list[str], list[str]]:
    """``settings`` with ``patch`` applied, and the fields changed and skipped (same value)."""
    current = msgspec.structs.asdict(settings)
    wanted = {
        name: getattr(patch, name)
        for name in _PATCH_FIELDS
        if getattr(patch, name, None) is not None
    }
    changed = [n for n, v in wanted.items() if current.get(n) != v]
    skipped = [n for n in wanted if n not in changed]
    updated = msgspec.structs.replace(settings, **{n: wanted[n] for n in changed})
    return updated, changed, skipped


def settings_problems(
    agent: Agent | None, settings: SessionSettings, persona_problem: str | None
) -> list[dict[str, Any]]:
    """What is wrong with a session's settings: catalogues, the agent's tools, the persona.

    ``persona_problem`` is why the named persona cannot be used (it does not exist), if so.
    """
    problems = run_settings_problems(effective(agent, settings))
    if agent is not None and settings.tools is not None:
        allowed = {t.name for t in agent.spec.tools}
        for i, tool in enumerate(settings.tools):
            if tool.name not in allowed:
                problems.append(
                    {
                        "field": f"tools[{i}].name",
                        "code": ErrorCode.TOOL_NOT_AVAILABLE.value,
                        "message": f"tool {tool.name!r} is not among the agent's tools"
                        f" ({', '.join(sorted(allowed)) or 'none'})",
                    }
                )
    if persona_problem is not None:
        problems.append(
            {
                "field": "persona",
                "code": ErrorCode.VALIDATION_ERROR.value,
                "message": persona_problem,
            }
        )
    if settings.persona is not None and settings.system_prompt is not None:
        problems.append(
            {
                "field": "persona",
                "code": ErrorCode.VALIDATION_ERROR.value,
                "message": "set system_prompt or persona, not both",
            }
        )
    return problems


def raise_problems(problems: list[dict[str, Any]]) -> None:
    """Refuse settings with problems: the first one's code, every one in the details.

    Raises:
        RuntimeFault: When there is any problem.
    """
    if not problems:
        return
    first = problems[0]
    message = f"{first['field']}: {first['message']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    raise RuntimeFault(ErrorCode(first["code"]), message, {"errors": problems})


def input_text(input_data: dict[str, Any]) -> str:
    """The run's user message: ``message`` or ``input`` when a string, else the data as JSON."""
    for key in ("message", "input"):
        if isinstance(value := input_data.get(key), str) and value:
            return value
    return json.dumps(input_data, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Triage:
    """What to do with an execution taken from the queue.

    ``action`` is ``ack`` (nothing to do), ``later`` (hand it back after ``delay``), ``fail``
    (record ``code`` and ``message``) or ``run``.
    """

    action: str
    delay: float = 0.0
    code: ErrorCode | None = None
    message: str = ""


def triage(execution: Execution | None, *, owned: bool, ack_wait: float) -> Triage:
    """Before the agent is looked at: whether the execution is this worker's to run.

    ``owned`` is whether a live worker answers for it (asked only when it is running).
    """
    if execution is None or not execution.runnable:
        return Triage("ack")  # finished, parked, or unknown: nothing to do
    if execution.status == "running" and owned:
        return Triage("later", ack_wait)  # look again later
    if execution.leg_attempts >= execution.options.max_attempts:
        return Triage(
            "fail",
            code=ErrorCode.INTERNAL_ERROR,
            message=f"the execution was attempted {execution.leg_attempts} times and its runtime"
            " stopped during each",
        )
    return Triage("run")


def agent_triage(execution: Execution, agent: Agent | None, instances: int) -> Triage:
    """Once the agent is looked at: whether it can run the execution now."""
    if agent is None or agent.namespace != execution.namespace:
        return Triage(
            "fail", code=ErrorCode.AGENT_NOT_FOUND, message=f"no agent {execution.agent_id!r}"
        )
    if agent.state is not AgentState.RUNNING:
        return Triage(
            "fail",
            code=ErrorCode.AGENT_NOT_RUNNING,
            message=f"agent {agent.id!r} is {agent.state.value}; start or resume it first",
        )
    if instances <= 0:
        return Triage("fail", code=ErrorCode.RATE_LIMITED, message="the agent has 0 instances")
    return Triage("run")
