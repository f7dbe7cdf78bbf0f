"""Agent definitions checked against the catalogues and the cross-field rules."""

from typing import Any

import pytest
from _builders import refusal

from parley.aggregates.agent_spec import validate_cron
from parley.aggregates.agent_spec import validate_spec
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.registry import Trigger


def spec(**fields: Any) -> AgentSpec:
    return AgentSpec(name="helper", **fields)


def errors_of(candidate: AgentSpec) -> ParleyError:
    return refusal(validate_spec, candidate)


@pytest.mark.parametrize(
    "candidate",
    [
        spec(),
        spec(provider="anthropic", model="claude-sonnet-4-5", system_prompt="hi"),
        spec(persona="pirate"),
        spec(tools=[ToolSpec(name="calculator"), ToolSpec(name="http_request")]),
        spec(strategy=StrategySpec(name="plan_and_execute")),
        spec(strategy=StrategySpec(name="plan_and_execute", config={"max_iterations": 100})),
        spec(trigger=Trigger(type="webhook")),
        spec(trigger=Trigger(type="periodic", interval_seconds=60)),
        spec(trigger=Trigger(type="periodic", cron="*/5 9-17 * jan-jun mon-fri")),
    ],
    ids=lambda s: str(s),
)
def test_a_valid_definition_passes(candidate: AgentSpec) -> None:
    validate_spec(candidate)


@pytest.mark.parametrize(
    ("candidate", "code", "field"),
    [
        (spec(provider="acme"), ErrorCode.PROVIDER_NOT_AVAILABLE, "provider"),
        (
            spec(tools=[ToolSpec(name="calculator"), ToolSpec(name="teleport")]),
            ErrorCode.TOOL_NOT_AVAILABLE,
            "tools[1].name",
        ),
        (
            spec(tools=[ToolSpec(name="calculator"), ToolSpec(name="calculator")]),
            ErrorCode.VALIDATION_ERROR,
            "tools[1].name",
        ),
        (
            spec(strategy=StrategySpec(name="swarm")),
            ErrorCode.STRATEGY_NOT_AVAILABLE,
            "strategy.name",
        ),
        (spec(trigger=Trigger(type="periodic")), ErrorCode.VALIDATION_ERROR, "trigger"),
        (
            spec(trigger=Trigger(type="periodic", interval_seconds=5, cron="* * * * *")),
            ErrorCode.VALIDATION_ERROR,
            "trigger",
        ),
        (
            spec(trigger=Trigger(type="periodic", cron="61 * * * *")),
            ErrorCode.VALIDATION_ERROR,
            "trigger.cron",
        ),
        (
            spec(trigger=Trigger(type="manual", interval_seconds=5)),
            ErrorCode.VALIDATION_ERROR,
            "trigger.interval_seconds",
        ),
        (
            spec(trigger=Trigger(type="webhook", cron="* * * * *")),
            ErrorCode.VALIDATION_ERROR,
            "trigger.cron",
        ),
        (spec(system_prompt="a", persona="b"), ErrorCode.VALIDATION_ERROR, "persona"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_an_invalid_definition_is_refused_with_its_code_and_field(
    candidate: AgentSpec, code: ErrorCode, field: str
) -> None:
    error = errors_of(candidate)
    assert error.code is code
    assert error.details is not None
    assert [e["field"] for e in error.details["errors"]] == [field]
    assert error.details["errors"][0]["code"] == code.value
    assert error.details["errors"][0]["message"]


@pytest.mark.parametrize("value", [0, 101, "5", 2.5, True, None])
def test_plan_and_execute_max_iterations_must_be_an_integer_from_1_to_100(value: Any) -> None:
    candidate = spec(
        strategy=StrategySpec(name="plan_and_execute", config={"max_iterations": value})
    )
    error = errors_of(candidate)
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details is not None
    assert error.details["errors"][0]["field"] == "strategy.config.max_iterations"


def test_every_problem_is_reported_at_once_and_the_first_one_sets_the_code() -> None:
    error = errors_of(
        spec(
            provider="acme",
            tools=[ToolSpec(name="teleport")],
            system_prompt="a",
            persona="b",
        )
    )
    assert error.code is ErrorCode.PROVIDER_NOT_AVAILABLE
    assert error.details is not None
    assert [e["field"] for e in error.details["errors"]] == ["provider", "tools[0].name", "persona"]
    assert "2 more" in error.message


def test_a_domain_error_becomes_the_error_body_a_reply_carries() -> None:
    body = errors_of(spec(provider="acme")).to_body()
    assert body.code is ErrorCode.PROVIDER_NOT_AVAILABLE
    assert isinstance(body.details, dict)
    assert body.details["errors"][0]["field"] == "provider"


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "0 0 1 1 0",
        "59 23 31 12 7",
        "*/15 0-6,18-23 * * *",
        "5/10 * * * *",
        "0 9 * JAN-DEC MON-FRI",
        "0 9 * * sun",
        "  0   9 * * *  ",
    ],
)
def test_a_valid_cron_expression_passes(expression: str) -> None:
    assert validate_cron(expression) is None


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "*/x * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "-1 * * * *",
        "* * * mon *",
    ],
)
def test_an_invalid_cron_expression_says_what_is_wrong(expression: str) -> None:
    assert validate_cron(expression)
