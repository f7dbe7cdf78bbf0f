"""Agent definitions written as TOML: our own field names and Caxton's configuration agents."""

import msgspec
import pytest

from parley.contracts.agent_toml import TomlAgentError
from parley.contracts.agent_toml import agent_spec_from_toml
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import Budget
from parley.contracts.registry import Memory
from parley.contracts.registry import ModelParams
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.registry import Trigger

FULL = """
name = "researcher"
description = "Finds things"
provider = "anthropic"
model = "claude-sonnet"
system_prompt = '''
You research.
'''
capabilities = ["research", "summarize"]
parent_id = "p1"
instances = 2

[params]
temperature = 0.2
max_tokens = 2000

[[tools]]
name = "http_request"
[tools.config]
allow = ["example.com"]

[[tools]]
name = "calculator"

[strategy]
name = "plan_and_execute"
config = { max_iterations = 5 }

[trigger]
type = "periodic"
cron = "*/5 * * * *"

[memory]
enabled = true
scope = "session"

[budget]
max_tokens = 100000
period = "day"

[labels]
team = "search"
"""

# The example from Caxton's API reference (POST /api/v1/agents/config).
CAXTON = """name = "DataAnalyzer"
version = "1.0.0"
capabilities = ["data-analysis", "report-generation"]
tools = ["http_client", "csv_parser"]

system_prompt = '''
You are a data analysis expert.
'''

documentation = '''
# DataAnalyzer Agent

Specializes in data analysis tasks.
'''
"""


def test_a_document_with_our_field_names_becomes_the_same_spec() -> None:
    assert agent_spec_from_toml(FULL) == AgentSpec(
        name="researcher",
        description="Finds things",
        provider="anthropic",
        model="claude-sonnet",
        system_prompt="You research.\n",
        capabilities=["research", "summarize"],
        parent_id="p1",
        instances=2,
        params=ModelParams(temperature=0.2, max_tokens=2000),
        tools=[
            ToolSpec(name="http_request", config={"allow": ["example.com"]}),
            ToolSpec(name="calculator"),
        ],
        strategy=StrategySpec(name="plan_and_execute", config={"max_iterations": 5}),
        trigger=Trigger(type="periodic", cron="*/5 * * * *"),
        memory=Memory(enabled=True, scope="session"),
        budget=Budget(max_tokens=100000, period="day"),
        labels={"team": "search"},
    )


def test_the_same_document_as_utf8_bytes_parses_alike() -> None:
    assert agent_spec_from_toml(FULL.encode()) == agent_spec_from_toml(FULL)


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert agent_spec_from_toml(b"\xef\xbb\xbfname = 'x'\n").name == "x"


def test_a_minimal_document_takes_the_spec_defaults() -> None:
    assert agent_spec_from_toml('name = "x"') == AgentSpec(name="x")


def test_caxtons_reference_config_agent_maps_onto_our_spec() -> None:
    spec = agent_spec_from_toml(CAXTON)
    assert spec.name == "DataAnalyzer"
    assert spec.system_prompt == "You are a data analysis expert.\n"
    assert spec.description == "# DataAnalyzer Agent\n\nSpecializes in data analysis tasks."
    assert spec.tools == [ToolSpec(name="http_client"), ToolSpec(name="csv_parser")]
    assert spec.capabilities == ["data-analysis", "report-generation"]
    assert spec.labels == {"version": "1.0.0"}


def test_a_numeric_caxton_version_becomes_a_string_label() -> None:
    assert agent_spec_from_toml('name = "x"\nversion = 2').labels == {"version": "2"}


def test_caxtons_memory_keys_map_to_the_memory_table_and_workspace_scope_to_namespace() -> None:
    spec = agent_spec_from_toml('name = "x"\nmemory_enabled = true\nmemory_scope = "workspace"')
    assert spec.memory == Memory(enabled=True, scope="namespace")


def test_tools_may_mix_plain_names_and_tables() -> None:
    spec = agent_spec_from_toml('name = "x"\ntools = ["calculator", {name = "http_request"}]')
    assert [t.name for t in spec.tools] == ["calculator", "http_request"]


@pytest.mark.parametrize(
    ("document", "line", "column"),
    [
        ('name = "x"\nprovider = \n', 2, 12),
        ('name = "x"\n[params\n', 2, 8),
        ('name = "x"\nname = "y"\n', 2, None),
    ],
)
def test_invalid_toml_is_a_toml_agent_error_with_line_and_column(
    document: str, line: int, column: int | None
) -> None:
    with pytest.raises(TomlAgentError) as info:
        agent_spec_from_toml(document)
    assert info.value.line == line
    if column is not None:
        assert info.value.column == column
    assert f"line {line}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_invalid_utf8_is_a_toml_agent_error_pointing_at_the_bad_byte() -> None:
    with pytest.raises(TomlAgentError) as info:
        agent_spec_from_toml(b'name = "x"\ndescription = "caf\xe9"\n')
    assert (info.value.line, info.value.column) == (2, 19)
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ('description = "no name"', "name"),
        ('name = "x"\ncolour = "blue"', "colour"),
        ('name = "x"\n[params]\ntemperature = 5.0', "$.params.temperature"),
        ('name = "x"\ntools = [1]', "$.tools[0]"),
        ('name = "x"\ndescription = "a"\ndocumentation = "b"', "documentation"),
        ('name = "x"\nmemory_enabled = true\n[memory]\nenabled = false', "$.memory"),
    ],
)
def test_a_document_that_is_not_an_agent_raises_msgspec_validation_error(
    document: str, where: str
) -> None:
    with pytest.raises(
        msgspec.ValidationError, match=where.replace("$", r"\$").replace("[", r"\[")
    ):
        agent_spec_from_toml(document)
