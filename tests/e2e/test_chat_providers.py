"""Chat through the whole stack on the Anthropic and OpenAI adapters (the real SDKs), with the
runtime pointed at a local wire-compatible server: tool calls, 529, a mid-stream error.

The stack here is this module's own: its runtime gets the wire server's URL and fake keys.
"""

import httpx
import pytest
from e2e_support import new_agent
from tests_support import stream_events
from wire_server import WireServer

KEY = "sk-test-SECRET-e2e-0123456789"
MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}  # current models


@pytest.fixture(scope="module")
def stack_env(wire: WireServer) -> dict[str, str]:
    """The runtime pointed at the wire server, with fake keys and short timeouts."""
    return {
        **wire.runtime_env(KEY),
        "PARLEY_ANTHROPIC_IDLE_TIMEOUT": "1",
        "PARLEY_OPENAI_IDLE_TIMEOUT": "1",
        "PARLEY_ANTHROPIC_MAX_RETRIES": "1",
        "PARLEY_OPENAI_MAX_RETRIES": "1",
    }


async def running_agent(http: httpx.AsyncClient, provider: str) -> str:
    tools = [{"name": "calculator"}, {"name": "current_time"}]
    return await new_agent(http, provider, provider=provider, model=MODELS[provider], tools=tools)


@pytest.fixture(params=["anthropic", "openai"])
def api(request: pytest.FixtureRequest, wire: WireServer) -> str:
    wire.script(request.param)
    wire.calls = [
        ("call_a", "calculator", ['{"expres', 'sion": "6*7"}']),
        ("call_b", "current_time", ["{", "}"]),
    ]
    return request.param


async def test_a_turn_with_two_tool_calls_runs_both_tools_and_answers(api, http, wire):
    agent_id = await running_agent(http, api)
    wire.script(api, "tools", "text")
    response = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "what now?"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["response"] == "Hello there, world"
    assert data["outcome"] == "completed"
    calls = {c["name"]: c for c in data["tool_calls"]}
    assert calls["calculator"]["result"]["content"] == "42"
    assert calls["current_time"]["result"]["ok"] is True
    # usage comes from the wire: two calls, each with its reported tokens
    assert data["tokens_used"] > 0 and data["usage"]["input_tokens"] > 0
    # the second model call saw both tool results
    last_request = wire.requests[-1][1]
    text = str(last_request)
    assert "42" in text
    # the key reached the provider and nothing else
    assert KEY in str(wire.requests[-1][2])
    session = await http.get(f"/api/v1/sessions/{data['conversation_id']}")
    assert KEY not in session.text


async def test_a_provider_overloaded_529_is_a_502_provider_error_with_its_reason(api, http, wire):
    agent_id = await running_agent(http, api)
    wire.script(api, "529", "529", "529")
    response = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "PROVIDER_ERROR"
    assert api in error["message"]
    assert KEY not in response.text


async def test_a_stream_that_breaks_after_it_started_ends_interrupted_and_is_recorded(
    api, http, wire, own_stack
):
    agent_id = await running_agent(http, api)
    wire.script(api, "midstream_error")
    response = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "PROVIDER_ERROR"
    assert error["details"]["outcome"] == "interrupted"
    assert error["details"]["partial_response"] == "Hello there,"
    conversation = error["details"]["conversation_id"]
    events = await stream_events(own_stack, f"session-{conversation}")
    ended = [e for e in events if e.type.startswith("turn.") and e.type != "turn.started"]
    assert [e.type for e in ended] == ["turn.interrupted"]
    assert ended[0].data["output"] == "Hello there,"
    assert ended[0].data["usage"]["input_tokens"] > 0
