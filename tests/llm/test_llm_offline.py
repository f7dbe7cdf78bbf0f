"""The offline provider: deterministic, keyless, and following its documented rule."""

import pytest

from parley.llm import ChatRequest
from parley.llm import Message
from parley.llm import Provider
from parley.llm import ProviderBadRequest
from parley.llm import TextDelta
from parley.llm import ToolCall
from parley.llm import ToolDef
from parley.llm import provider_for
from parley.llm.offline import OfflineProvider
from parley.llm.offline import parse_calls

CALC = ToolDef("calculator", "evaluates", {"type": "object"})


def ask(text: str, *tools: ToolDef, max_tokens: int = 1024) -> ChatRequest:
    return ChatRequest("offline", (Message("user", text),), tools=tools, max_tokens=max_tokens)


async def test_it_echoes_the_last_user_message_word_by_word():
    deltas = [d async for d in OfflineProvider().stream(ask("hello  wide world"))]
    assert [d.text for d in deltas if isinstance(d, TextDelta)] == [
        "echo:",
        " hello",
        "  wide",
        " world",
    ]
    completion = await OfflineProvider().complete(ask("hello  wide world"))
    assert completion.text == "echo: hello  wide world"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (3, 4)
    assert completion.stop_reason == "end"


async def test_the_same_request_always_gives_the_same_answer():
    request = ask('call calculator({"expression": "2+3"}) and then hello', CALC)
    first = [d async for d in OfflineProvider().stream(request)]
    second = [d async for d in OfflineProvider().stream(request)]
    assert first == second


async def test_call_syntax_for_offered_tools_becomes_tool_calls():
    weather = ToolDef("weather")
    text = 'call calculator({"expression": "2+3"}) then call weather({"city": "Paris"})'
    completion = await OfflineProvider().complete(ask(text, CALC, weather))
    assert completion.stop_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall("call_0", "calculator", {"expression": "2+3"}),
        ToolCall("call_1", "weather", {"city": "Paris"}),
    )
    assert completion.text == ""


async def test_calls_to_tools_not_offered_are_echoed_instead():
    completion = await OfflineProvider().complete(ask('call shell({"cmd": "ls"})', CALC))
    assert completion.tool_calls == ()
    assert completion.text == 'echo: call shell({"cmd": "ls"})'


async def test_tool_results_are_summarised_in_call_order():
    calls = (
        ToolCall("call_0", "calculator", {"expression": "2+3"}),
        ToolCall("call_1", "weather", {"city": "Paris"}),
    )
    request = ChatRequest(
        "offline",
        (
            Message("user", "do both"),
            Message("assistant", tool_calls=calls),
            Message("tool", "5", tool_call_id="call_0"),
            Message("tool", "sunny", tool_call_id="call_1"),
        ),
        tools=(CALC, ToolDef("weather")),
    )
    completion = await OfflineProvider().complete(request)
    assert completion.text == "results: calculator: 5; weather: sunny"
    assert completion.stop_reason == "end"


async def test_answers_are_cut_at_max_tokens():
    completion = await OfflineProvider().complete(ask("one two three four", max_tokens=2))
    assert completion.text == "echo: one"
    assert completion.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call f()", [("f", {})]),
        ('call f({"a": [1, 2]}) call g({"b": "x)"})', [("f", {"a": [1, 2]}), ("g", {"b": "x)"})]),
        ("call f(not json)", []),
        ("call f([1])", []),
        ("recall nothing", []),
    ],
    ids=["no-args", "two-calls", "bad-json", "not-an-object", "no-call"],
)
def test_the_call_syntax_is_parsed_strictly(text, expected):
    assert parse_calls(text) == expected


def test_the_factory_builds_every_named_provider_and_refuses_unknown_ones():
    from parley.llm import ProviderSettings

    offline = provider_for("offline")
    assert isinstance(offline, Provider) and offline.name == "offline"
    assert provider_for("anthropic").name == "anthropic"
    assert provider_for("openai").name == "openai"
    compatible = provider_for(
        "openai_compatible", ProviderSettings(base_url="http://127.0.0.1:11434/v1")
    )
    assert compatible.name == "openai_compatible"
    with pytest.raises(ProviderBadRequest, match="base_url"):
        provider_for("openai_compatible")
    with pytest.raises(ProviderBadRequest, match="unknown provider"):
        provider_for("gemini")


def told(system: str, text: str = "hello") -> ChatRequest:
    return ChatRequest("offline", (Message("user", text),), system=system)


async def test_a_system_prompt_marked_offline_fail_fails_every_call():
    with pytest.raises(ProviderBadRequest, match=r"\[offline:fail\]"):
        await OfflineProvider().complete(told("Be brief. [offline:fail]"))
    assert (await OfflineProvider().complete(told("Be brief."))).text == "echo: hello"


async def test_offline_fail_pct_fails_the_same_share_of_messages_every_time():
    async def failed(text: str) -> bool:
        try:
            await OfflineProvider().complete(told("[offline:fail_pct=30]", text))
        except ProviderBadRequest:
            return True
        return False

    outcomes = [await failed(f"message {i}") for i in range(400)]
    assert 90 <= sum(outcomes) <= 150
    assert outcomes == [await failed(f"message {i}") for i in range(400)]


async def test_offline_delay_ms_holds_the_answer_back(monkeypatch: pytest.MonkeyPatch):
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr("parley.llm.offline.asyncio.sleep", sleep)
    completion = await OfflineProvider().complete(told("[offline:delay_ms=250]"))
    assert (completion.text, waited) == ("echo: hello", [0.25])
