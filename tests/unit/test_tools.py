"""Built-in tools as pure logic: calculator, json_query, current_time, read_file, configs, SSRF."""

import ipaddress
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest

from parley.contracts.catalogue import STRATEGIES
from parley.contracts.catalogue import TOOLS
from parley.contracts.hosts import host_allowed
from parley.contracts.hosts import host_pattern_problem
from parley.contracts.strategies import STRATEGY_CATALOGUE
from parley.contracts.strategies import validate_strategy_config
from parley.contracts.tools import TOOL_CATALOGUE
from parley.contracts.tools import validate_tool_config
from parley.runtime.tools import TOOLS as IMPLEMENTED
from parley.runtime.tools import ToolContext
from parley.runtime.tools import ToolError
from parley.runtime.tools import run_tool
from parley.runtime.tools._addresses import blocked_reason
from parley.runtime.tools._addresses import checked_addresses
from parley.runtime.tools._addresses import parse_target
from parley.runtime.tools.calculator import evaluate

NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class DictFiles:
    """A FileReader over a dict of name → (content type, bytes)."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files

    async def read(self, name_or_id: str) -> tuple[str, str, bytes]:
        if name_or_id not in self.files:
            raise ToolError("not_found", f"no file {name_or_id!r}")
        content_type, data = self.files[name_or_id]
        return name_or_id, content_type, data


def ctx(files: DictFiles | None = None) -> ToolContext:
    return ToolContext("default", "agent-1", "session-1", files, now=lambda: NOON)


async def call(name: str, arguments: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    return await run_tool(name, arguments, config or {}, ctx())


async def refused(name: str, arguments: Any, config: dict[str, Any] | None = None) -> ToolError:
    with pytest.raises(ToolError) as info:
        await run_tool(name, arguments, config or {}, ctx())
    return info.value


# --- catalogue -------------------------------------------------------------------------------


def test_every_catalogued_tool_is_implemented_and_the_catalogue_names_are_the_known_ones() -> None:
    assert set(IMPLEMENTED) == set(TOOL_CATALOGUE) == TOOLS
    assert "send_message" in TOOLS  # agents message each other (issue 4)
    assert set(STRATEGY_CATALOGUE) == STRATEGIES == {"reactive", "plan_and_execute"}


def test_every_descriptor_has_object_schemas_and_examples_that_validate() -> None:
    for name, descriptor in TOOL_CATALOGUE.items():
        assert descriptor.parameters["type"] == "object", name
        assert descriptor.config_schema["type"] == "object", name
        assert "requires_approval" in descriptor.config_schema["properties"], name
        assert descriptor.examples, name
        for example in descriptor.examples:
            assert validate_tool_config(name, example.config) == [], (name, example)


# --- calculator ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("2 ** 10", 1024),
        ("-3 + +4", 1),
        ("10 / 4", 2.5),
        ("sqrt(16) + abs(-2)", 6.0),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("round(pi, 2)", 3.14),
        ("log(e)", 1.0),
        ("2 ** -1", 0.5),
        ("factorial(5)", 120),
    ],
)
def test_the_calculator_evaluates_arithmetic(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("9**9**9", "too large"),
        ("10**10**10", "too large"),
        ("(2**9999) * (2**9999)", "exceeds"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("sqrt(-1)", "domain"),
        ("(-8) ** 0.5", "not a real number"),
        ("1e308 * 10", "not a finite number"),
        ("__import__('os')", "unknown name"),
        ("().__class__", "unsupported syntax"),
        ("'a' * 3", "unsupported syntax"),
        ("True + 1", "unsupported syntax"),
        ("x", "unknown name"),
        ("1 +", "not an arithmetic expression"),
        ("-" * 990 + "1", "nested"),
        ("factorial(100000)", "factorial"),
    ],
)
async def test_the_calculator_refuses_clearly(expression: str, said: str) -> None:
    error = await refused("calculator", {"expression": expression})
    assert error.code == "invalid_arguments"
    assert said in error.message


async def test_a_tool_call_with_wrong_arguments_names_the_argument() -> None:
    error = await refused("calculator", {"expresion": "1"})
    assert error.code == "invalid_arguments"
    assert "arguments.expresion" in error.message
    assert (await refused("calculator", ["1"])).code == "invalid_arguments"  # type: ignore[arg-type]


# --- json_query, current_time, read_file -----------------------------------------------------


async def test_json_query_selects_with_jmespath_from_a_value_or_a_json_string() -> None:
    data = {"people": [{"name": "Ada", "age": 36}, {"name": "Bo", "age": 9}]}
    outcome = await call("json_query", {"data": data, "expression": "people[?age > `30`].name"})
    assert outcome.data == {"result": ["Ada"]}
    assert outcome.content == '["Ada"]'
    outcome = await call("json_query", {"data": '{"a": {"b": 2}}', "expression": "a.b"})
    assert outcome.data == {"result": 2}


@pytest.mark.parametrize(
    ("arguments", "config", "code"),
    [
        ({"data": {}, "expression": "a[[["}, {}, "invalid_arguments"),
        ({"data": "{not json", "expression": "a"}, {}, "invalid_arguments"),
        ({"data": "x" * 200, "expression": "a"}, {"max_input_bytes": 100}, "too_large"),
        ({"data": list(range(100)), "expression": "@"}, {"max_input_bytes": 50}, "too_large"),
    ],
)
async def test_json_query_refuses_bad_expressions_and_oversized_input(
    arguments: dict[str, Any], config: dict[str, Any], code: str
) -> None:
    assert (await refused("json_query", arguments, config)).code == code


async def test_current_time_answers_in_the_asked_zone_then_the_configured_default() -> None:
    outcome = await call("current_time", {"timezone": "Asia/Tokyo"})
    assert outcome.data["iso"] == "2025-06-01T21:00:00+09:00"
    assert outcome.data["unix"] == NOON.timestamp()
    assert outcome.data["utc_offset"] == "+09:00"
    outcome = await call("current_time", {}, {"default_timezone": "Europe/Paris"})
    assert outcome.data["timezone"] == "Europe/Paris"
    assert outcome.data["iso"].endswith("+02:00")
    assert (await refused("current_time", {"timezone": "Mars/Base"})).code == "invalid_arguments"


async def test_read_file_gives_text_refuses_binary_and_truncates_at_the_cap() -> None:
    files = DictFiles(
        {
            "notes.md": ("text/markdown; charset=utf-8", "héllo wörld".encode()),
            "data.json": ("application/json", b'{"a": 1}'),
            "logo.png": ("image/png", b"\x89PNG\r\n"),
            "bad.txt": ("text/plain", b"\xff\xfe\xfa"),
        }
    )
    run = ctx(files)
    outcome = await run_tool("read_file", {"name": "notes.md"}, {}, run)
    assert outcome.content == "héllo wörld"
    assert outcome.data["truncated"] is False
    assert (await run_tool("read_file", {"name": "data.json"}, {}, run)).content == '{"a": 1}'
    cut = await run_tool("read_file", {"name": "notes.md"}, {"max_bytes": 2}, run)
    assert cut.content.startswith("h\n[truncated")  # the cut "é" is held back, not garbled
    assert cut.data["truncated"] is True
    for name, code in (("logo.png", "refused"), ("bad.txt", "refused"), ("gone", "not_found")):
        with pytest.raises(ToolError) as info:
            await run_tool("read_file", {"name": name}, {}, run)
        assert info.value.code == code
    assert (await refused("read_file", {"name": "notes.md"})).code == "not_found"  # no session


# --- config validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "config", "field"),
    [
        ("http_request", {"timeout_seconds": 0}, "config.timeout_seconds"),
        ("http_request", {"timeout_seconds": 61}, "config.timeout_seconds"),
        ("http_request", {"max_response_bytes": 2_000_000}, "config.max_response_bytes"),
        ("http_request", {"allowed_methods": ["TRACE"]}, "config.allowed_methods[0]"),
        ("http_request", {"allowed_methods": []}, "config.allowed_methods"),
        ("http_request", {"allowed_hosts": ["ok.com", "https://x.com"]}, "config.allowed_hosts[1]"),
        ("http_request", {"allowed_hosts": ["*"]}, "config.allowed_hosts[0]"),
        ("http_request", {"allowed_hosts": ["x.com:8080"]}, "config.allowed_hosts[0]"),
        ("http_request", {"verify": False}, "config.verify"),
        ("current_time", {"default_timezone": "Nowhere/City"}, "config.default_timezone"),
        ("current_time", {"default_timezone": "../../etc/passwd"}, "config.default_timezone"),
        ("json_query", {"max_input_bytes": 0}, "config.max_input_bytes"),
        ("calculator", {"requires_approval": "yes"}, "config.requires_approval"),
    ],
)
def test_an_invalid_tool_config_is_reported_by_field(
    name: str, config: dict[str, Any], field: str
) -> None:
    errors = validate_tool_config(name, config)
    assert [e["field"] for e in errors] == [field]
    assert errors[0]["code"] == "VALIDATION_ERROR"
    assert "`" not in errors[0]["message"] and "$" not in errors[0]["message"]


def test_valid_tool_configs_pass_and_an_unknown_tool_is_named() -> None:
    config = {
        "allowed_hosts": ["api.example.com", "*.example.org", "10.0.0.5", "[::1]", "EXAMPLE.net."],
        "allowed_methods": ["GET", "POST"],
        "timeout_seconds": 0.5,
        "requires_approval": True,
    }
    assert validate_tool_config("http_request", config) == []
    assert validate_tool_config("current_time", {"default_timezone": "America/New_York"}) == []
    assert validate_tool_config("teleport", {})[0]["code"] == "TOOL_NOT_AVAILABLE"


@pytest.mark.parametrize(
    ("name", "config", "field"),
    [
        ("plan_and_execute", {"max_iterations": 0}, "strategy.config.max_iterations"),
        ("plan_and_execute", {"max_iterations": 101}, "strategy.config.max_iterations"),
        ("plan_and_execute", {"max_tool_rounds": 21}, "strategy.config.max_tool_rounds"),
        ("reactive", {"max_tool_rounds": 0}, "strategy.config.max_tool_rounds"),
        ("reactive", {"max_iterations": 3}, "strategy.config.max_iterations"),
        ("swarm", {}, "strategy.name"),
    ],
)
def test_an_invalid_strategy_config_is_reported_by_field(
    name: str, config: dict[str, Any], field: str
) -> None:
    assert [e["field"] for e in validate_strategy_config(name, config)] == [field]


def test_valid_strategy_configs_pass() -> None:
    assert validate_strategy_config("reactive", {}) == []
    assert validate_strategy_config("plan_and_execute", {"max_iterations": 100}) == []


# --- SSRF: address classification and host allowlists ----------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
        "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.1/",
        "http://0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://localhost./",
        "http://LOCALHOST:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://10.0.0.1:6379/",
    ],
)
async def test_loopback_private_and_metadata_urls_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(ToolError) as info:
        await checked_addresses(parse_target(url), [])
    assert info.value.code == "refused"
    assert "not a public address" in info.value.message


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://example.com@127.0.0.1/", "credentials"),
        ("http://user:pw@example.com/", "credentials"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:25/", "only http and https"),
        ("http://0177.0.0.1/", "invalid URL"),  # octal: the URL parser refuses it outright
        ("http:///path", "no host"),
    ],
)
def test_urls_with_credentials_other_schemes_or_odd_hosts_are_refused(url: str, said: str) -> None:
    with pytest.raises(ToolError) as info:
        parse_target(url)
    assert said in info.value.message


async def test_an_allowlisted_host_may_be_private_and_other_hosts_are_refused() -> None:
    assert await checked_addresses(parse_target("http://127.0.0.1:9/"), ["127.0.0.1"])
    assert await checked_addresses(parse_target("http://2130706433/"), ["127.0.0.1"])
    assert await checked_addresses(parse_target("http://[::1]/"), ["[::1]"])
    with pytest.raises(ToolError) as info:
        await checked_addresses(parse_target("http://127.0.0.1/"), ["example.com"])
    assert "not in this tool's allowed_hosts" in info.value.message


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("api.example.com", ["api.example.com"], True),
        ("API.Example.COM.", ["api.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("evil-example.com", ["*.example.com"], False),
        ("example.com.evil.io", ["example.com"], False),
        ("0x7f000001", ["127.0.0.1"], True),
        ("::1", ["[::1]"], True),
        ("anything.io", [], False),
    ],
)
def test_host_allowlist_matching(host: str, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


@pytest.mark.parametrize("pattern", ["*", "*.", "http://a.com", "a.com/x", "a..com", "-a.com", ""])
def test_bad_host_patterns_are_explained(pattern: str) -> None:
    assert host_pattern_problem(pattern)
