"""The strategy catalogue: how an agent works a request, and each strategy's config.

Pure data, no I/O. The registry validates ``strategy.config`` with
:func:`validate_strategy_config`; the edge serves :data:`STRATEGY_CATALOGUE` at
`GET /api/v1/strategies`.
"""

from typing import Annotated
from typing import Any

import msgspec
from msgspec import Meta

from parley.contracts.validation import FieldError
from parley.contracts.validation import convert_strict
from parley.contracts.validation import inline_schema

__all__ = [
    "STRATEGY_CATALOGUE",
    "STRATEGY_CONFIGS",
    "PlanAndExecuteConfig",
    "ReactiveConfig",
    "StrategyDescriptor",
    "StrategyExample",
    "validate_strategy_config",
]

ToolRounds = Annotated[int, Meta(ge=1, le=20)]


class ReactiveConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config of `reactive`: answer, calling tools as the model asks."""

    max_tool_rounds: ToolRounds = 5
    """Model ↔ tools round trips per turn before the turn must answer."""


class PlanAndExecuteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config of `plan_and_execute`: plan steps, execute each, revise."""

    max_iterations: Annotated[int, Meta(ge=1, le=100)] = 5
    """Plan steps executed at most."""
    max_tool_rounds: ToolRounds = 5
    """Model ↔ tools round trips per step."""


class StrategyExample(msgspec.Struct, frozen=True, kw_only=True):
    """One sample strategy config."""

    description: str
    """What the example shows."""
    config: dict[str, Any]
    """`strategy.config` in the agent definition."""


class StrategyDescriptor(msgspec.Struct, frozen=True, kw_only=True):
    """An execution strategy, as `GET /api/v1/strategies` lists it."""

    name: str
    """Name to set as `strategy.name`."""
    description: str
    """How the strategy works a request."""
    config_schema: dict[str, Any]
    """JSON Schema of `strategy.config`."""
    examples: list[StrategyExample] = []
    """Sample configs."""


STRATEGY_CONFIGS: dict[str, type[msgspec.Struct]] = {
    "reactive": ReactiveConfig,
    "plan_and_execute": PlanAndExecuteConfig,
}
"""Strategy name → its config Struct."""

STRATEGY_CATALOGUE: dict[str, StrategyDescriptor] = {
    "reactive": StrategyDescriptor(
        name="reactive",
        description="Answer each message directly, calling tools when the model asks for"
        " them, up to max_tool_rounds round trips per turn.",
        config_schema=inline_schema(ReactiveConfig),
        examples=[StrategyExample(description="Few tool calls", config={"max_tool_rounds": 2})],
    ),
    "plan_and_execute": StrategyDescriptor(
        name="plan_and_execute",
        description="Write a plan of steps first, then execute them one by one (with tools),"
        " revising the plan as results come in; stops after max_iterations steps.",
        config_schema=inline_schema(PlanAndExecuteConfig),
        examples=[
            StrategyExample(
                description="A longer task", config={"max_iterations": 20, "max_tool_rounds": 3}
            )
        ],
    ),
}
"""Strategy name → descriptor, for every strategy."""


def validate_strategy_config(name: str, config: dict[str, Any]) -> list[FieldError]:
    """Check ``strategy.config`` of an agent definition.

    Args:
        name: Strategy name.
        config: The config as given (decoded JSON).

    Returns:
        Field-level problems (fields ``strategy.config.<path>``, or ``strategy.name`` with
        code ``STRATEGY_NOT_AVAILABLE``); empty when the config is valid.
    """
    if name not in STRATEGY_CONFIGS:
        known = ", ".join(sorted(STRATEGY_CONFIGS))
        message = f"unknown strategy {name!r}; use one of {known}"
        return [{"field": "strategy.name", "code": "STRATEGY_NOT_AVAILABLE", "message": message}]
    return convert_strict(config, STRATEGY_CONFIGS[name], "strategy.config")[1]
