"""Secrets stay secret: a provider that sends the caller's key back (a careless gateway's 401,
an answer that spells it out) leaves the key in no event, response, log file or store file.

The stack here is this module's own: its runtime gets the wire server's URL, an Anthropic
key with a provider key's shape (from the environment) and an OpenAI key with no
recognisable shape (from a ``*_KEY_FILE``), so that the known-secrets list is tested, not
only the shape patterns.
"""

import asyncio
import json
from typing import Any

import httpx
import pytest
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from tests_support import export_events
from wire_server import WireServer

from parley.devstack.stack import Stack

ANTHROPIC_KEY = "sk-test-SECRET-1234567890abcdef"
OPENAI_KEY = "plainSECRETvalue0987654321zyx"  # no credential shape: only known as a secret
KEYS = (ANTHROPIC_KEY, OPENAI_KEY)
MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1-mini"}


@pytest.fixture(scope="module")
def stack_env(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The runtime on the wire server, the Anthropic key from the environment and the OpenAI
    key from a file."""
    keys = tmp_path_factory.mktemp("keys")
    (keys / "openai.key").write_text(OPENAI_KEY + "\n")
    return {
        "PARLEY_ANTHROPIC_BASE_URL": wire.url,
        "PARLEY_OPENAI_BASE_URL": f"{wire.url}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "OPENAI_API_KEY": "",
        "PARLEY_OPENAI_API_KEY_FILE": str(keys / "openai.key"),
        "PARLEY_ANTHROPIC_MAX_RETRIES": "0",
        "PARLEY_OPENAI_MAX_RETRIES": "0",
    }


class Responses:
    """Every response body this module's tests read, for the final check."""

    bodies: list[tuple[str, str]] = []

    @classmethod
    def keep(cls, response: httpx.Response) -> httpx.Response:
        cls.bodies.append((str(response.request.url), response.text))
        assert not any(key in response.text for key in KEYS), response.text
        return response


async def running_agent(
    http: httpx.AsyncClient, provider: str, tools: list[dict[str, Any]] | None = None
) -> str:
    return await new_agent(
        http, provider, provider=provider, model=MODELS[provider], tools=tools or []
    )


async def _post(
    http: httpx.AsyncClient, agent_id: str, path: str = "chat", **body: Any
) -> httpx.Response:
    """A POST of ``body`` (``{"message": "hi"}`` by default) to the agent's ``path`` (``chat``,
    ``chat/stream``, ``webhook``), its answer kept."""
    response = await http.post(f"/api/v1/agents/{agent_id}/{path}", json=body or {"message": "hi"})
    return Responses.keep(response)


@pytest.fixture(params=["anthropic", "openai"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_401_that_echoes_the_key_fails_the_chat_without_the_key(
    api: str, http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await running_agent(http, api)
    wire.script(api, "401_echo")
    error = error_of(await _post(http, agent_id), 502, "PROVIDER_ERROR")
    assert "invalid credentials [REDACTED]" in error["message"]  # the reason, not the key
    assert wire.count(api) >= 1
    conversation = error["details"]["conversation_id"]
    Responses.keep(await http.get(f"/api/v1/sessions/{conversation}"))
    Responses.keep(await http.get(f"/api/v1/agents/{agent_id}/logs", params={"level": "info"}))

    wire.script(api, "401_echo")
    streamed = await _post(http, agent_id, "chat/stream")
    assert "event: error" in streamed.text and "PROVIDER_ERROR" in streamed.text


async def test_an_answer_that_spells_the_key_out_is_recorded_and_returned_without_it(
    api: str, http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await running_agent(http, api)
    wire.script(api, "echo_text")
    data = body_of(await _post(http, agent_id))["data"]
    assert data["response"] == "Your key is [REDACTED], keep it safe."
    Responses.keep(await http.get(f"/api/v1/sessions/{data['conversation_id']}"))

    wire.script(api, "echo_text")  # live: the key arrives in two deltas
    streamed = await _post(http, agent_id, "chat/stream")
    tokens = "".join(frame["text"] for frame in _frames(streamed.text, "token"))
    assert tokens == "Your key is [REDACTED], keep it safe.", streamed.text


async def test_a_tool_result_that_shows_the_key_is_recorded_and_returned_without_it(
    api: str, http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await running_agent(
        http, api, tools=[{"name": "http_request", "config": {"allowed_hosts": ["127.0.0.1"]}}]
    )
    wire.leak = f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\nOPENAI_API_KEY={OPENAI_KEY}\n"
    wire.calls = [("call_leak", "http_request", [json.dumps({"url": f"{wire.url}/leak"})])]
    wire.script(api, "tools", "text")
    response = await _post(http, agent_id, message="fetch it")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    [call] = data["tool_calls"]
    assert call["result"]["ok"] is True and "[REDACTED]" in call["result"]["content"]
    fed_back = json.dumps(wire.requests[-1][1])  # what the model was given next
    assert "[REDACTED]" in fed_back and not any(key in fed_back for key in KEYS)
    Responses.keep(await http.get(f"/api/v1/sessions/{data['conversation_id']}"))


async def test_a_webhook_execution_against_the_echoing_provider_fails_without_the_key(
    api: str, http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await running_agent(http, api)
    wire.script(api, "401_echo", "401_echo", "401_echo")
    accepted = await _post(http, agent_id, "webhook", input_data={"message": "go"})
    assert accepted.status_code == 202, accepted.text
    execution_id = accepted.json()["data"]["execution_id"]
    view = await _finished(http, agent_id, execution_id)
    assert view["status"] == "failed", view
    assert view["error"]["code"] == "PROVIDER_ERROR"
    assert "[REDACTED]" in view["error"]["message"]
    Responses.keep(await http.get(f"/api/v1/agents/{agent_id}/executions"))
    logs = Responses.keep(await http.get(f"/api/v1/agents/{agent_id}/logs"))
    assert logs.status_code == 200 and "[REDACTED]" in logs.text


async def test_the_keys_are_in_no_event_no_log_file_and_no_store_file(
    own_stack: Stack,
) -> None:
    assert len(Responses.bodies) >= 10, "run with the tests above: they make the traffic"
    seen = [
        json.dumps([event.type, event.data], default=str)
        for event in await export_events(own_stack.nats_url)
    ]
    everything = "\n".join(seen)
    assert '"turn.failed"' in everything and '"execution.failed"' in everything
    assert "[REDACTED]" in everything
    _assert_no_key(everything, "the event store")

    logs = sorted((own_stack.state_dir / "logs").glob("*.log"))
    assert {path.stem for path in logs} >= {"runtime", "edge", "registry"}
    for path in logs:
        _assert_no_key(path.read_bytes(), str(path))
    store_files = [p for p in (own_stack.state_dir / "nats").rglob("*") if p.is_file()]
    assert any(p.suffix == ".blk" for p in store_files)
    for path in store_files:
        _assert_no_key(path.read_bytes(), str(path))


def _frames(sse: str, event: str) -> list[dict[str, Any]]:
    """The data of the ``event`` frames of an SSE body."""
    found, current = [], None
    for line in sse.splitlines():
        if line.startswith("event:"):
            current = line.removeprefix("event:").strip()
        elif line.startswith("data:") and current == event:
            found.append(json.loads(line.removeprefix("data:")))
        elif not line.strip():
            current = None
    return found


def _assert_no_key(content: str | bytes, where: str) -> None:
    for key in KEYS:
        needle: Any = key.encode() if isinstance(content, bytes) else key
        assert needle not in content, f"{key} found in {where}"


async def _finished(http: httpx.AsyncClient, agent_id: str, execution_id: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            response = Responses.keep(
                await http.get(f"/api/v1/agents/{agent_id}/executions/{execution_id}")
            )
            if response.status_code == 200:
                view: dict[str, Any] = response.json()["data"]
                if view["status"] in ("completed", "failed"):
                    return view
            await asyncio.sleep(0.1)
