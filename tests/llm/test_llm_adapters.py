"""One suite over the Anthropic and OpenAI adapters, against a wire-compatible local server."""

import time

import pytest
from llm_support import SECRET_KEY
from llm_support import settings_for
from wire_server import WireServer

from parley.llm import ChatRequest
from parley.llm import Message
from parley.llm import ProviderAuthError
from parley.llm import ProviderRateLimited
from parley.llm import ProviderTimeout
from parley.llm import ProviderUnavailable
from parley.llm import StreamInterrupted
from parley.llm import TextDelta
from parley.llm import ToolCall
from parley.llm import ToolDef
from parley.llm._base import GuardedProvider

REQUEST = ChatRequest(
    model="test-model",
    system="be brief",
    messages=(Message("user", "hello"),),
    tools=(ToolDef("calculator", "adds", {"type": "object"}), ToolDef("weather")),
)


def api(provider: GuardedProvider) -> str:
    return "anthropic" if provider.name == "anthropic" else "openai"


async def test_text_is_streamed_in_pieces_and_usage_comes_from_the_wire(provider, wire):
    deltas = [d async for d in provider.stream(REQUEST)]
    texts = [d.text for d in deltas if isinstance(d, TextDelta)]
    assert texts == ["Hello", " there,", " world"]
    completion = await provider.complete(REQUEST)
    assert completion.text == "Hello there, world"
    assert completion.stop_reason == "end"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (11, 7)


async def test_two_tool_calls_are_assembled_from_argument_fragments(provider, wire):
    wire.script(api(provider), "tools")
    completion = await provider.complete(REQUEST)
    assert completion.stop_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall("toolu_1", "calculator", {"expression": "2+3"}),
        ToolCall("toolu_2", "weather", {"city": "Paris"}),
    )


async def test_the_request_carries_system_tools_and_the_tool_round_trip(provider, wire):
    call = ToolCall("toolu_1", "calculator", {"expression": "2+3"})
    follow_up = ChatRequest(
        model="test-model",
        system="be brief",
        messages=(
            Message("user", "add"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "5", tool_call_id="toolu_1"),
        ),
        tools=REQUEST.tools,
    )
    await provider.complete(follow_up)
    _, body, _ = wire.requests[-1]
    assert body["model"] == "test-model" and body["stream"] is True
    assert len(body["tools"]) == 2
    if provider.name == "anthropic":
        assert body["system"] == "be brief"
        assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_1"
    else:
        assert body["messages"][0] == {"role": "system", "content": "be brief"}
        assert body["messages"][3]["tool_call_id"] == "toolu_1"
        assert body["stream_options"] == {"include_usage": True}


async def test_a_429_is_retried_after_retry_after_and_then_succeeds(provider, wire):
    wire.script(api(provider), "429")
    before = wire.count(api(provider))
    started = time.monotonic()
    completion = await provider.complete(REQUEST)
    assert completion.text == "Hello there, world"
    assert time.monotonic() - started >= 0.2
    assert wire.count(api(provider)) - before == 2


@pytest.mark.parametrize("status", ["500", "529"])
async def test_server_errors_become_unavailable_after_bounded_retries(provider, wire, status):
    wire.script(api(provider), status, status, status, status)
    before = wire.count(api(provider))
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.complete(REQUEST)
    assert caught.value.status == int(status)
    assert wire.count(api(provider)) - before == 3  # one try and two retries, no SDK retries


async def test_rate_limits_that_persist_surface_as_rate_limited_with_retry_after(provider, wire):
    wire.script(api(provider), "429", "429", "429")
    wire.retry_after = "0.01"
    try:
        with pytest.raises(ProviderRateLimited) as caught:
            await provider.complete(REQUEST)
    finally:
        wire.retry_after = "0.2"
    assert caught.value.retry_after == pytest.approx(0.01)


async def test_an_error_event_mid_stream_interrupts_with_the_partial_text(provider, wire):
    wire.script(api(provider), "midstream_error", "text")
    before = wire.count(api(provider))
    with pytest.raises(StreamInterrupted) as caught:
        await provider.complete(REQUEST)
    assert caught.value.partial_text == "Hello there,"
    assert caught.value.usage.output_tokens > 0
    assert "Overloaded" in caught.value.message
    assert wire.count(api(provider)) - before == 1  # never retried once text was out


async def test_a_hung_stream_fails_within_the_idle_timeout(provider, wire):
    wire.script(api(provider), "hang", "hang", "hang")
    started = time.monotonic()
    with pytest.raises((ProviderTimeout, StreamInterrupted)):
        await provider.complete(REQUEST)
    assert time.monotonic() - started < 3 * 0.5 + 1.0


async def test_a_stream_that_stalls_after_text_is_interrupted_not_hung(provider, wire):
    wire.script(api(provider), "stall")
    started = time.monotonic()
    with pytest.raises(StreamInterrupted) as caught:
        await provider.complete(REQUEST)
    assert time.monotonic() - started < 1.5
    assert caught.value.partial_text == "Hello there,"
    assert isinstance(caught.value.cause, ProviderTimeout)


async def test_the_breaker_opens_after_repeated_failures_and_then_fails_fast(provider, wire):
    wire.script(api(provider), *["500"] * 9)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await provider.complete(REQUEST)
    before = wire.count(api(provider))
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await provider.complete(REQUEST)
    assert wire.count(api(provider)) == before
    wire.script(api(provider))


async def test_the_api_key_never_appears_in_errors_or_reprs(provider, wire):
    wire.script(api(provider), "500", "500", "500")
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.complete(REQUEST)
    _, _, headers = wire.requests[-1]
    assert SECRET_KEY in str(headers)  # it was sent…
    for text in (str(caught.value), repr(caught.value), repr(provider.settings)):
        assert SECRET_KEY not in text  # …but never shown


async def test_a_missing_key_is_an_auth_error_that_says_what_to_set(monkeypatch, wire):
    from parley.llm import ProviderSettings
    from parley.llm import provider_for

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("PARLEY_ANTHROPIC_API_KEY_FILE", raising=False)
    adapter = provider_for("anthropic", ProviderSettings(base_url=wire.url))
    with pytest.raises(ProviderAuthError, match="ANTHROPIC_API_KEY"):
        await adapter.complete(REQUEST)
    await adapter.aclose()


async def test_the_key_can_come_from_a_secret_file(monkeypatch, tmp_path, wire: WireServer):
    from parley.llm import provider_for

    secret = tmp_path / "key"
    secret.write_text(SECRET_KEY + "\n")
    monkeypatch.setenv("PARLEY_OPENAI_COMPATIBLE_API_KEY_FILE", str(secret))
    monkeypatch.delenv("PARLEY_OPENAI_COMPATIBLE_API_KEY", raising=False)
    adapter = provider_for("openai_compatible", settings_for(wire, "openai", api_key=None))
    wire.script("openai")
    assert (await adapter.complete(REQUEST)).text == "Hello there, world"
    await adapter.aclose()
    assert wire.requests[-1][2]["Authorization"] == f"Bearer {SECRET_KEY}"


async def test_a_retry_after_beyond_the_cap_is_raised_at_once_not_waited_for(provider, wire):
    wire.script(api(provider), "429")
    wire.retry_after = "30"
    before = wire.count(api(provider))
    try:
        with pytest.raises(ProviderRateLimited) as caught:
            await provider.complete(REQUEST)
    finally:
        wire.retry_after = "0.2"
    assert caught.value.retry_after == 30
    assert wire.count(api(provider)) - before == 1
