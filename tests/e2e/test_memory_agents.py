"""Agents that use their memory, through the real stack with the offline provider: the
`remember` and `recall` tools, what a turn recollects, the cluster and namespace scopes, and
a rebuilt index recalling as the runtime did.

The offline model calls a tool when the message says ``call <tool>(<json>)``, and
``[offline:show_system]`` in the system prompt makes it end its answer with the system
prompt it was given (what the turn added from memory).
"""

import json
from typing import Any

import httpx
from e2e_support import body_of
from e2e_support import call
from e2e_support import events_in
from e2e_support import new_agent
from memory_support import ALICE
from memory_support import COFFEE
from memory_support import SALES
from memory_support import rebuilt

from parley.contracts.memory import memory_scope
from parley.devstack.stack import Stack

SHOW = "You help. [offline:show_system]"
MEMORY = {"memory": {"enabled": True}}


async def _chat(
    api: httpx.AsyncClient, agent_id: str, message: str, **headers: str
) -> dict[str, Any]:
    answer = await api.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": message}, headers=headers or None
    )
    data: dict[str, Any] = body_of(answer)["data"]
    return data


async def _tool(
    api: httpx.AsyncClient,
    agent_id: str,
    tool: str,
    headers: dict[str, str] | None = None,
    **args: Any,
) -> dict[str, Any]:
    """The result of the one call of ``tool`` a turn made, asserted ok."""
    data = await _chat(api, agent_id, call(tool, **args), **(headers or {}))
    calls = data["tool_calls"]
    assert [c["name"] for c in calls] == [tool], data
    result: dict[str, Any] = calls[0]["result"]
    assert result["ok"] is True, result
    content: dict[str, Any] = json.loads(result["content"])
    return content


async def _recalled(api: httpx.AsyncClient, agent_id: str, query: str, **kw: Any) -> list[str]:
    found = await _tool(api, agent_id, "recall", query=query, **kw)
    return [hit["entity_name"] for hit in found["results"]]


async def test_remember_records_memory_events_and_a_later_turn_is_told_the_fact(
    api: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    agent_id = await new_agent(api, "mind", system_prompt=SHOW, **MEMORY)
    written = await _tool(api, agent_id, "remember", entities=[SALES, ALICE])
    assert written["entities_created"] == 2 and len(written["entity_ids"]) == 2
    # recorded as memory events (through the registry), beside the run's tool events
    async with rebuilt(stack) as book:
        types = await events_in(book.store, namespace, 0)
    assert types.count("memory.entity_created") == 2 and "tool.completed" in types
    # and the edge's memory routes see them
    found = body_of(
        await api.get(f"/api/v1/agents/{agent_id}/memory/search", params={"q": "mobile growth"})
    )["data"]
    assert found["results"][0]["entity_name"] == "Q3SalesInsight"

    answer = await _chat(api, agent_id, "How did mobile sales grow in Q3?")
    system = answer["response"].split("system: ", 1)[1]
    assert system.startswith(SHOW)
    assert "Relevant memories" in system
    assert "Q3SalesInsight (business_insight)" in system
    assert "Mobile channel drove 67% of growth" in system
    # an unrelated message is told nothing of it
    unrelated = await _chat(api, agent_id, "zzz qqq")
    assert "Relevant memories" not in unrelated["response"]

    recalled = await _tool(api, agent_id, "recall", query="who maintains the warehouse")
    assert recalled["results"][0]["entity_name"] == "Alice"
    assert recalled["results"][0]["observations"] == ALICE["observations"]
    assert recalled["embedding_model"] == "parley-hashed-ngrams-256"


async def test_remember_adds_only_new_facts_and_bad_calls_fail_as_tool_errors(
    api: httpx.AsyncClient,
) -> None:
    agent_id = await new_agent(api, "mind", **MEMORY)
    await _tool(api, agent_id, "remember", entities=[SALES])
    grown = {**SALES, "observations": ["CAC fell by 15%"]}
    again = await _tool(api, agent_id, "remember", entities=[grown])
    assert again["entities_created"] == 0
    stats = body_of(await api.get(f"/api/v1/agents/{agent_id}/memory/stats"))["data"]
    assert (stats["total_entities"], stats["total_observations"]) == (1, 3)

    bad = {"relations": [{"from_entity": "Nobody", "to_entity": "Q3SalesInsight",
                          "relation_type": "wrote"}]}  # fmt: skip
    for args in [{}, bad, {"entities": [{"name": "x"}]}]:
        data = await _chat(api, agent_id, call("remember", **args))
        result = data["tool_calls"][0]["result"]
        assert result["ok"] is False and result["error"]["code"] == "invalid_arguments", result
    refused = await _chat(api, agent_id, call("recall", query=" "))
    assert refused["tool_calls"][0]["result"]["error"]["code"] == "invalid_arguments"


async def test_an_agent_without_memory_has_no_memory_tools_and_no_recollection(
    api: httpx.AsyncClient,
) -> None:
    plain = await new_agent(api, "plain", system_prompt=SHOW)
    shared = await new_agent(
        api, "mind", memory={"enabled": True, "scope": "namespace"}, system_prompt=SHOW
    )
    await _tool(api, shared, "remember", entities=[COFFEE])
    data = await _chat(api, plain, call("remember", entities=[ALICE]))
    assert data["tool_calls"] == [] and data["response"].startswith("echo: call remember")
    told = await _chat(api, plain, "where is the office coffee machine?")
    assert "Relevant memories" not in told["response"]
    # the same question to the memory's agent is told
    told = await _chat(api, shared, "where is the office coffee machine?")
    assert "The office coffee machine is on the third floor" in told["response"]


def _cluster(name: str, replicas: int) -> dict[str, Any]:
    spec = {"name": f"{name}-worker", "memory": {"enabled": True, "scope": "cluster"}}
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {"template": {"replicas": replicas, "spec": spec}},
    }


async def test_cluster_memory_is_shared_by_its_agents_and_no_one_else(
    api: httpx.AsyncClient,
) -> None:
    made = await api.post("/api/v1/clusters", json=_cluster("team", 2))
    first, second = body_of(made, 201)["data"]["agent_ids"]
    other = body_of(await api.post("/api/v1/clusters", json=_cluster("others", 1)), 201)
    (outsider,) = other["data"]["agent_ids"]
    loner = await new_agent(api, "loner", memory={"enabled": True, "scope": "cluster"})

    await _tool(api, first, "remember", entities=[COFFEE])
    assert await _recalled(api, second, "where is the coffee machine") == ["OfficeCoffee"]
    assert await _recalled(api, outsider, "where is the coffee machine") == []
    assert await _recalled(api, loner, "where is the coffee machine") == []
    stats = body_of(await api.get(f"/api/v1/agents/{second}/memory/stats"))["data"]
    assert (stats["memory_scope"], stats["scope"]) == ("cluster", "cluster:team")
    assert stats["total_entities"] == 1
    # a loner's `cluster` scope is its own memory
    await _tool(api, loner, "remember", entities=[ALICE])
    assert await _recalled(api, loner, "warehouse engineer") == ["Alice"]
    assert "Alice" not in await _recalled(api, first, "warehouse engineer")


async def test_memory_never_crosses_a_namespace_in_turns_or_tools(
    api: httpx.AsyncClient, namespace: str
) -> None:
    shared = {"memory": {"enabled": True, "scope": "namespace"}, "system_prompt": SHOW}
    writer = await new_agent(api, "mind", **shared)
    reader = await new_agent(api, "mind", **shared)
    elsewhere = {"X-Parley-Namespace": f"{namespace}-b"}
    stranger = await new_agent(api, "mind", headers=elsewhere, **shared)

    await _tool(api, writer, "remember", entities=[COFFEE])
    assert await _recalled(api, reader, "office coffee machine") == ["OfficeCoffee"]
    found = await _tool(api, stranger, "recall", elsewhere, query="office coffee machine")
    assert found["results"] == []
    told = await _chat(api, stranger, "where is the office coffee machine?", **elsewhere)
    assert "third floor" not in told["response"].split("system: ", 1)[1]
    # the other namespace's own memory is its own
    await _tool(api, stranger, "remember", elsewhere, entities=[ALICE])
    assert await _recalled(api, reader, "warehouse data engineer") != ["Alice"]


async def test_a_rebuilt_index_recalls_what_the_runtime_recalled(
    api: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    agent_id = await new_agent(api, "mind", **MEMORY)
    await _tool(api, agent_id, "remember", entities=[SALES, ALICE, COFFEE])
    queries = ["mobile growth", "warehouse engineer", "where is the coffee", "Q3"]
    live = [(await _tool(api, agent_id, "recall", query=q, limit=3))["results"] for q in queries]
    assert all(live)

    scope = memory_scope("agent", agent_id)
    async with rebuilt(stack) as book:
        again = [(await book.search_by(None, namespace, scope, q, 3)).results for q in queries]
    assert [[(h.entity_name, h.similarity, h.score) for h in found] for found in again] == [
        [(h["entity_name"], h["similarity"], h["score"]) for h in found] for found in live
    ]
