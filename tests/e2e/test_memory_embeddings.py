"""Memory embeddings from the agent's provider, through the whole stack: an OpenAI agent's
memory is searched with OpenAI embeddings (the real SDK against the local wire-compatible
server's `/v1/embeddings`); an Anthropic agent's with the local embedder (Anthropic has no
embeddings API). The remembered fact reaches the model's system prompt as sent on the wire.
"""

import asyncio
import json
from typing import Any

import httpx
import pytest
from e2e_support import body_of
from e2e_support import new_agent
from wire_server import WireServer

from parley.devstack.stack import Stack

KEY = "sk-test-SECRET-memory-0123456789"
MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}
FACT = {
    "name": "AcmeInvoices",
    "entity_type": "customer_preference",
    "observations": ["Acme wants invoices in euros"],
}


@pytest.fixture(scope="module")
def stack_env(wire: WireServer) -> dict[str, str]:
    """The runtime pointed at the wire server, with fake keys."""
    return wire.runtime_env(KEY)


async def _agent(http: httpx.AsyncClient, provider: str, **spec: Any) -> str:
    """A running agent of ``provider`` with memory enabled."""
    model = MODELS[provider]
    return await new_agent(
        http, f"{provider}-mind", provider=provider, model=model, memory={"enabled": True}, **spec
    )


def _calls(wire: WireServer, tool: str, arguments: dict[str, Any]) -> None:
    """The next ``tools`` scenario calls ``tool`` with ``arguments``."""
    wire.calls = [("call_m", tool, [json.dumps(arguments)])]


async def _turn(http: httpx.AsyncClient, agent_id: str, message: str) -> dict[str, Any]:
    answer = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": message})
    data: dict[str, Any] = body_of(answer)["data"]
    return data


async def _recall(
    http: httpx.AsyncClient, wire: WireServer, api: str, agent_id: str, query: str
) -> dict[str, Any]:
    _calls(wire, "recall", {"query": query})
    wire.script(api, "tools", "text")
    data = await _turn(http, agent_id, "what do we know?")
    (called,) = data["tool_calls"]
    assert called["name"] == "recall" and called["result"]["ok"], called
    found: dict[str, Any] = json.loads(called["result"]["content"])
    return found


async def _search(http: httpx.AsyncClient, agent_id: str, query: str) -> dict[str, Any]:
    found = await http.get(f"/api/v1/agents/{agent_id}/memory/search", params={"q": query})
    data: dict[str, Any] = body_of(found)["data"]
    return data


def _embedded(wire: WireServer) -> list[dict[str, Any]]:
    return [body for api, body, _ in wire.requests if api == "embeddings"]


async def test_an_openai_agent_s_memory_is_searched_with_openai_embeddings(
    http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await _agent(http, "openai", system_prompt="You keep accounts.")
    _calls(wire, "remember", {"entities": [FACT]})
    wire.script("openai", "tools", "text")
    data = await _turn(http, agent_id, "remember this")
    (called,) = data["tool_calls"]
    assert called["name"] == "remember" and called["result"]["ok"], called
    # the model was offered the memory tools
    offered = {t["function"]["name"] for t in wire.requests[-1][1]["tools"]}
    assert {"remember", "recall"} <= offered

    before = len(_embedded(wire))
    wire.script("openai", "text")
    await _turn(http, agent_id, "Which currency does Acme want on its invoices?")
    chat = [body for api, body, _ in wire.requests if api == "openai"][-1]
    system = chat["messages"][0]
    assert system["role"] in ("system", "developer")
    assert system["content"].startswith("You keep accounts.")
    assert "AcmeInvoices (customer_preference): Acme wants invoices in euros" in system["content"]
    asked = _embedded(wire)[before:]
    assert asked and asked[0]["model"] == "text-embedding-3-small"
    assert "Which currency does Acme want on its invoices?" in asked[0]["input"]
    assert any("Acme wants invoices in euros" in text for text in asked[0]["input"][1:])

    found = await _recall(http, wire, "openai", agent_id, "euro invoices")
    assert found["embedding_model"] == "openai:text-embedding-3-small"
    assert found["results"][0]["entity_name"] == "AcmeInvoices"
    # the search route searches as the agent does
    routed = await _search(http, agent_id, "euro invoices")
    assert routed["embedding_model"] == "openai:text-embedding-3-small"
    assert routed["results"][0]["entity_name"] == "AcmeInvoices"
    assert routed["results"][0]["similarity"] == found["results"][0]["similarity"]
    # the entity was embedded once; later searches embed only their query
    assert all(len(body["input"]) == 1 for body in _embedded(wire)[before + 1 :])
    assert KEY in str([h for api, _, h in wire.requests if api == "embeddings"][-1])


async def test_an_anthropic_agent_s_memory_uses_the_local_embedder(
    http: httpx.AsyncClient, wire: WireServer
) -> None:
    agent_id = await _agent(http, "anthropic")
    _calls(wire, "remember", {"entities": [FACT]})
    wire.script("anthropic", "tools", "text")
    await _turn(http, agent_id, "remember this")
    before = len(_embedded(wire))
    found = await _recall(http, wire, "anthropic", agent_id, "euro invoices")
    assert found["embedding_model"] == "parley-hashed-ngrams-256"
    assert found["results"][0]["entity_name"] == "AcmeInvoices"
    routed = await _search(http, agent_id, "euro invoices")
    assert routed["embedding_model"] == "parley-hashed-ngrams-256"
    assert len(_embedded(wire)) == before


async def test_with_no_runtime_up_the_edge_s_own_index_answers_a_search(
    http: httpx.AsyncClient, own_stack: Stack
) -> None:
    agent_id = await _agent(http, "openai")
    entities = f"/api/v1/agents/{agent_id}/memory/entities"
    body_of(await http.post(entities, json={"entities": [FACT]}), 201)
    await asyncio.to_thread(own_stack.stop_process, "runtime")
    try:
        routed = await _search(http, agent_id, "euro invoices")
        assert routed["embedding_model"] == "parley-hashed-ngrams-256"
        assert routed["results"][0]["entity_name"] == "AcmeInvoices"
    finally:
        await asyncio.to_thread(own_stack.restart, "runtime")
