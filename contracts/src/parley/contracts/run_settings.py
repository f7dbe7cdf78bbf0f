"""The checks shared by an agent's definition and a session's settings.

Provider, model and parameters against the model catalogue; tools and strategy against
their catalogues and config schemas. Every problem is reported, each with its field.
"""

from collections.abc import Sequence
from typing import Protocol

from parley.contracts.catalogue import PROVIDERS
from parley.contracts.catalogue import STRATEGIES
from parley.contracts.catalogue import TOOLS
from parley.contracts.errors import ErrorCode
from parley.contracts.models import validate_model_params
from parley.contracts.registry import ModelParams
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.strategies import validate_strategy_config
from parley.contracts.tools import validate_tool_config
from parley.contracts.validation import FieldError

__all__ = ["RunSettings", "run_settings_problems"]


class RunSettings(Protocol):
    """What a run is set up with: an agent's definition, or a session's effective settings."""

    @property
    def provider(self) -> str:
        """The model provider (a key of the model catalogue)."""

    @property
    def model(self) -> str:
        """The provider's model."""

    @property
    def params(self) -> ModelParams:
        """Model parameters, checked against the model's ranges."""

    @property
    def tools(self) -> Sequence[ToolSpec]:
        """Built-in tools, each with its config."""

    @property
    def strategy(self) -> StrategySpec:
        """The reasoning strategy and its config."""


def _problem(code: ErrorCode, field: str, message: str) -> FieldError:
    return {"field": field, "code": code.value, "message": message}


def run_settings_problems(settings: RunSettings) -> list[FieldError]:
    """Every problem with ``settings`` (empty when they are fine).

    Codes: ``PROVIDER_NOT_AVAILABLE``, ``TOOL_NOT_AVAILABLE``, ``STRATEGY_NOT_AVAILABLE`` or
    ``VALIDATION_ERROR``.
    """
    provider, tools, strategy = settings.provider, settings.tools, settings.strategy
    problems: list[FieldError] = []
    if provider not in PROVIDERS:
        problems.append(
            _problem(
                ErrorCode.PROVIDER_NOT_AVAILABLE,
                "provider",
                f"unknown provider {provider!r}; use one of {_listed(PROVIDERS)}",
            )
        )
    else:
        problems.extend(validate_model_params(provider, settings.model, settings.params))
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if tool.name not in TOOLS:
            problems.append(
                _problem(
                    ErrorCode.TOOL_NOT_AVAILABLE,
                    f"tools[{i}].name",
                    f"unknown tool {tool.name!r}; use one of {_listed(TOOLS)}",
                )
            )
        elif tool.name in seen:
            problems.append(
                _problem(
                    ErrorCode.VALIDATION_ERROR,
                    f"tools[{i}].name",
                    f"tool {tool.name!r} is listed twice",
                )
            )
        else:
            for problem in validate_tool_config(tool.name, tool.config):
                problems.append({**problem, "field": f"tools[{i}].{problem['field']}"})
        seen.add(tool.name)
    if strategy.name not in STRATEGIES:
        problems.append(
            _problem(
                ErrorCode.STRATEGY_NOT_AVAILABLE,
                "strategy.name",
                f"unknown strategy {strategy.name!r}; use one of {_listed(STRATEGIES)}",
            )
        )
    else:
        problems.extend(validate_strategy_config(strategy.name, strategy.config))
    return problems


def _listed(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))
