"""Agent memory through the real stack: `/agents/{id}/memory/entities·search·stats`."""

import httpx
import msgspec
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from memory_support import ALICE
from memory_support import COFFEE
from memory_support import SALES
from memory_support import rebuilt

from parley.contracts.memory import memory_scope
from parley.devstack.stack import Stack


def _memory(agent_id: str, what: str) -> str:
    return f"/api/v1/agents/{agent_id}/memory/{what}"


async def _remember(api: httpx.AsyncClient, agent_id: str, **body: object) -> dict:
    return body_of(await api.post(_memory(agent_id, "entities"), json=body), 201)["data"]


async def _search(api: httpx.AsyncClient, agent_id: str, **params: object) -> dict:
    return body_of(await api.get(_memory(agent_id, "search"), params=params))["data"]


async def test_remembered_entities_are_found_by_meaning_and_counted(
    api: httpx.AsyncClient,
) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    caxton_alice = {**ALICE, "entityType": ALICE["entity_type"]}
    del caxton_alice["entity_type"]  # Caxton's spelling
    written = await _remember(api, agent_id, entities=[SALES, caxton_alice, COFFEE])
    assert written["entities_created"] == 3 and len(set(written["entity_ids"])) == 3

    found = await _search(api, agent_id, q="how did mobile sales grow", limit=2)
    first = found["results"][0]
    assert first["entity_name"] == "Q3SalesInsight" and first["entity_type"] == "business_insight"
    assert first["observations"] == SALES["observations"] and first["created_at"]
    assert 0 < first["similarity"] <= 1 and first["entity_id"] == written["entity_ids"][0]
    assert len(found["results"]) <= 2 and found["total"] >= len(found["results"])
    by_caxton = await _search(api, agent_id, query="who maintains the data warehouse")
    assert by_caxton["results"][0]["entity_name"] == "Alice"
    assert by_caxton["results"][0]["entity_type"] == "person"

    strict = await _search(api, agent_id, q="how did mobile sales grow", min_similarity=0.99)
    assert strict == {**strict, "results": [], "total": 0}

    stats = body_of(await api.get(_memory(agent_id, "stats")))["data"]
    assert stats["total_entities"] == 3 and stats["total_observations"] == 4
    assert stats["memory_scope"] == "agent" and stats["scope"] == f"agent:{agent_id}"
    assert stats["total_relations"] == 0 and stats["storage_used_bytes"] > 0
    assert stats["last_updated"] and stats["embedding_model"]


async def test_a_second_write_adds_only_new_observations_and_relations_link_entities(
    api: httpx.AsyncClient,
) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    first = await _remember(api, agent_id, entities=[SALES])
    again = {**SALES, "observations": [*SALES["observations"], "CAC fell by 15%"]}
    link = {"from_entity": "Alice", "to_entity": "Q3SalesInsight", "relation_type": "reported"}
    second = await _remember(api, agent_id, entities=[again, ALICE], relations=[link])
    assert second["entities_created"] == 1 and second["relations_created"] == 1
    assert second["entity_ids"][0] == first["entity_ids"][0]
    repeat = await _remember(api, agent_id, relations=[link])
    assert repeat["relations_created"] == 0

    stats = body_of(await api.get(_memory(agent_id, "stats")))["data"]
    assert (stats["total_entities"], stats["total_observations"], stats["total_relations"]) == (
        2,
        4,
        1,
    )
    found = await _search(api, agent_id, q="customer acquisition cost CAC")
    assert found["results"][0]["observations"][-1] == "CAC fell by 15%"


async def test_a_rebuilt_index_answers_as_the_live_one(
    api: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    await _remember(api, agent_id, entities=[SALES, ALICE, COFFEE])
    queries = ["mobile growth", "warehouse engineer", "where is the coffee", "Q3"]
    live = [await _search(api, agent_id, q=q) for q in queries]

    scope = memory_scope("agent", agent_id)
    async with rebuilt(stack) as book:
        again = [msgspec.to_builtins(book.search(namespace, scope, q, 10, 0.0)) for q in queries]
    assert [found["results"] for found in again] == [found["results"] for found in live]
    assert all(found["results"] for found in live)


async def _key(client: httpx.AsyncClient, role: str, namespace: str) -> dict[str, str]:
    """Headers of a new key with ``role`` in ``namespace`` only."""
    body = {"name": f"memory {role}", "roles": [role], "namespaces": [namespace]}
    made = await client.post("/api/v1/keys", json=body, headers={"X-Parley-Namespace": namespace})
    return {"X-API-Key": body_of(made, 201)["data"]["secret"], "X-Parley-Namespace": namespace}


async def test_memory_never_crosses_a_namespace(
    api: httpx.AsyncClient, client: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    await _remember(api, agent_id, entities=[SALES])
    other_ns = f"{namespace}-b"
    other = await _key(client, "operator", other_ns)
    async with httpx.AsyncClient(base_url=stack.edge_url, headers=other, timeout=20) as http:
        for response in [
            await http.get(_memory(agent_id, "search"), params={"q": "sales"}),
            await http.get(_memory(agent_id, "stats")),
            await http.post(_memory(agent_id, "entities"), json={"entities": [ALICE]}),
        ]:
            error_of(response, 404, "AGENT_NOT_FOUND")
    stats = body_of(await api.get(_memory(agent_id, "stats")))["data"]
    assert stats["total_entities"] == 1


async def test_a_viewer_searches_memory_but_cannot_write_it(
    api: httpx.AsyncClient, client: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    await _remember(api, agent_id, entities=[SALES])
    viewer = await _key(client, "viewer", namespace)
    async with httpx.AsyncClient(base_url=stack.edge_url, headers=viewer, timeout=20) as http:
        found = await _search(http, agent_id, q="sales")
        assert found["results"][0]["entity_name"] == "Q3SalesInsight"
        refused = await http.post(_memory(agent_id, "entities"), json={"entities": [ALICE]})
        error_of(refused, 403, "FORBIDDEN")


async def test_a_namespace_scoped_memory_is_shared_by_the_namespace_s_agents_only(
    api: httpx.AsyncClient, namespace: str
) -> None:
    shared = {"memory": {"enabled": True, "scope": "namespace"}}
    writer = await new_agent(api, "mem", actions=(), **shared)
    reader = await new_agent(api, "mem", actions=(), **shared)
    loner = await new_agent(api, "mem", actions=())
    await _remember(api, writer, entities=[COFFEE])
    assert (await _search(api, reader, q="coffee"))["results"][0]["entity_name"] == "OfficeCoffee"
    assert (await _search(api, loner, q="coffee"))["results"] == []
    elsewhere = {"X-Parley-Namespace": f"{namespace}-b"}
    stranger = await new_agent(api, "mem", actions=(), headers=elsewhere, **shared)
    found = await api.get(_memory(stranger, "search"), params={"q": "coffee"}, headers=elsewhere)
    assert body_of(found)["data"]["results"] == []


async def test_bad_memory_input_is_a_422_in_the_envelope(api: httpx.AsyncClient) -> None:
    agent_id = await new_agent(api, "mem", actions=())
    bad_bodies = [
        {},
        {"entities": [{"name": "", "entity_type": "x"}]},
        {"entities": [{"name": "A", "observations": ["no type"]}]},
        {"entities": [{"name": "A", "entity_type": "has space"}]},
        {"entities": [{"name": "A", "entity_type": "x", "observations": [""]}]},
        {"entities": [{"name": "A", "entity_type": "x", "surprise": 1}]},
        {"relations": [{"from_entity": "Nobody", "to_entity": "Nowhere", "relation_type": "r"}]},
    ]
    for body in bad_bodies:
        error_of(await api.post(_memory(agent_id, "entities"), json=body), 422, "VALIDATION_ERROR")
    for params in [{}, {"q": "  "}, {"q": "x", "limit": 0}, {"q": "x", "min_similarity": 2}]:
        error_of(await api.get(_memory(agent_id, "search"), params=params), 422, "VALIDATION_ERROR")
    error_of(await api.get(_memory("no-such-agent", "stats")), 404, "AGENT_NOT_FOUND")
    stats = body_of(await api.get(_memory(agent_id, "stats")))["data"]
    assert stats["total_entities"] == 0
