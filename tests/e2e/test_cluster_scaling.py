"""Scaling a cluster's number of agents through the real stack (`POST …/scale` with
`target_agents`, Godel's `targetAgents`, GoAgents' `replicas`): new agents from the template,
the newest stopped and deleted, each change recorded; bad values refused; traffic kept."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from e2e_support import all_agents
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import events_in

from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.clusters import cluster_stream
from parley.devstack.stack import Stack
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    opened = await open_store(nats_url=stack.nats_url)
    yield opened
    await opened.close()


def _manifest(name: str, replicas: int, **policy: Any) -> dict[str, Any]:
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {
            "resource_policy": policy,
            "template": {"replicas": replicas, "spec": {"name": "worker"}},
        },
    }


async def _deploy(api: httpx.AsyncClient, name: str, replicas: int, **policy: Any) -> list[str]:
    created = await api.post("/api/v1/clusters", json=_manifest(name, replicas, **policy))
    ids: list[str] = body_of(created, 201)["data"]["agent_ids"]
    return ids


async def _scale(api: httpx.AsyncClient, name: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/api/v1/clusters/{name}/scale", json=body, timeout=60)


async def _members(api: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    detail = body_of(await api.get(f"/api/v1/clusters/{name}"))["data"]
    members: list[dict[str, Any]] = detail["agents"]
    return members


async def test_scaling_up_creates_running_agents_from_the_template_and_records_it(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    before = await store.last_position()
    first = await _deploy(api, "grow", 2)
    scaled = body_of(await _scale(api, "grow", {"target_agents": 5}))["data"]
    assert scaled["from_agents"] == 2 and scaled["to_agents"] == 5
    assert scaled["agent_ids"][:2] == first and len(set(scaled["agent_ids"])) == 5
    members = await _members(api, "grow")
    assert [m["name"] for m in members] == [f"worker-{k}" for k in range(1, 6)]
    assert [m["id"] for m in members] == scaled["agent_ids"]
    agents = await all_agents(api)
    for agent_id in scaled["agent_ids"]:
        assert agents[agent_id]["state"] == "running"
        assert agents[agent_id]["spec"]["labels"][CLUSTER_LABEL] == "grow"
    events = [e.type for e in await store.read(cluster_stream(namespace, "grow"))]
    assert events == ["cluster.created", "cluster.resize_started", "cluster.resized"]
    resized = (await store.read(cluster_stream(namespace, "grow")))[-1].data
    assert (resized["from_agents"], resized["to_agents"]) == (2, 5)
    counts = Counter(await events_in(store, namespace, before))
    assert counts["agent.created"] == 5 and counts["agent.state_changed"] == 5


async def test_scaling_down_stops_and_deletes_the_newest_and_keeps_the_oldest(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    ids = await _deploy(api, "shrink", 5)
    before = await store.last_position()
    scaled = body_of(await _scale(api, "shrink", {"targetAgents": 1}))["data"]
    assert scaled == {"name": "shrink", "from_agents": 5, "to_agents": 1, "agent_ids": ids[:1]}
    assert [m["name"] for m in await _members(api, "shrink")] == ["worker-1"]
    agents = await all_agents(api)
    assert ids[0] in agents and not set(ids[1:]) & set(agents)
    for gone in ids[1:]:
        error_of(await api.get(f"/api/v1/agents/{gone}"), 404, "AGENT_NOT_FOUND")
    counts = Counter(await events_in(store, namespace, before))
    assert counts["agent.state_changed"] == 4 and counts["agent.deleted"] == 4
    assert counts["cluster.resized"] == 1
    # The freed names come back with the next scale up (GoAgents' `replicas` spelling).
    again = body_of(await _scale(api, "shrink", {"replicas": 3}))["data"]
    assert again["agent_ids"][0] == ids[0] and not set(again["agent_ids"]) & set(ids[1:])
    assert [m["name"] for m in await _members(api, "shrink")] == [
        "worker-1",
        "worker-2",
        "worker-3",
    ]


async def test_the_same_count_changes_nothing(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    ids = await _deploy(api, "same", 2)
    scaled = body_of(await _scale(api, "same", {"target_agents": 2}))["data"]
    assert scaled["agent_ids"] == ids
    assert [e.type for e in await store.read(cluster_stream(namespace, "same"))] == [
        "cluster.created"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_agents": 0}, "target_agents"),
        ({"target_agents": 1001}, "target_agents"),
        ({"targetAgents": -1}, "targetAgents"),
        ({"target_agents": "3"}, "target_agents"),
        ({"target_agents": 3, "replicas": 4}, "target_agents"),
        ({"target_agents": 3, "agent_name": "worker-1"}, "target_agents"),
        ({"agent_name": "worker-1"}, "instances"),
        ({}, "agent_name"),
    ],
)
async def test_bad_values_are_refused_in_the_envelope(
    api: httpx.AsyncClient, store: EventStore, namespace: str, body: dict[str, Any], field: str
) -> None:
    await _deploy(api, "bad", 2)
    error = error_of(await _scale(api, "bad", body), 422, "VALIDATION_ERROR")
    assert field in str(error["details"]), error
    assert len(await store.read(cluster_stream(namespace, "bad"))) == 1


async def test_over_max_concurrent_agents_or_without_a_template_is_refused(
    api: httpx.AsyncClient,
) -> None:
    await _deploy(api, "capped", 2, max_concurrent_agents=3)
    error = error_of(await _scale(api, "capped", {"target_agents": 4}), 422, "VALIDATION_ERROR")
    assert error["details"]["errors"][0]["field"] == "target_agents"
    assert "max_concurrent_agents=3" in error["message"]
    explicit = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": "listed"},
        "spec": {"agents": [{"name": "a"}, {"name": "b"}]},
    }
    body_of(await api.post("/api/v1/clusters", json=explicit), 201)
    error = error_of(await _scale(api, "listed", {"target_agents": 3}), 422, "VALIDATION_ERROR")
    assert "no template" in error["message"]
    shrunk = body_of(await _scale(api, "listed", {"target_agents": 1}))["data"]
    assert shrunk["to_agents"] == 1
    assert [m["name"] for m in await _members(api, "listed")] == ["a"]


async def test_another_namespaces_key_does_not_find_the_cluster(
    api: httpx.AsyncClient, client: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    await _deploy(api, "walled", 2)
    other_ns = f"{namespace}-b"
    made = await client.post(
        "/api/v1/keys",
        json={"name": "scaler", "roles": ["operator"], "namespaces": [other_ns]},
        headers={"X-Parley-Namespace": other_ns},
    )
    headers = {"X-API-Key": body_of(made, 201)["data"]["secret"], "X-Parley-Namespace": other_ns}
    async with httpx.AsyncClient(base_url=stack.edge_url, headers=headers, timeout=20) as http:
        error_of(await _scale(http, "walled", {"target_agents": 4}), 404, "CLUSTER_NOT_FOUND")
    assert len(await _members(api, "walled")) == 2


async def test_turns_running_while_scaling_down_complete_or_never_start(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    ids = await _deploy(api, "busy", 5)
    before = await store.last_position()

    async def turn(agent_id: str) -> httpx.Response:
        return await api.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, timeout=60)

    turns = [turn(agent_id) for _ in range(4) for agent_id in ids]
    *answers, scaled = await asyncio.gather(*turns, _scale(api, "busy", {"target_agents": 1}))
    assert body_of(scaled)["data"]["agent_ids"] == ids[:1]
    completed = 0
    for answer in answers:
        if answer.status_code == 200:
            assert answer.json()["data"]["outcome"] == "completed", answer.text
            completed += 1
        else:  # refused before it started: the agent was stopping or gone
            assert answer.status_code in (404, 409), answer.text
            assert answer.json()["error"]["code"] in ("AGENT_NOT_FOUND", "AGENT_NOT_RUNNING")
    counts = Counter(await events_in(store, namespace, before))
    assert counts["turn.started"] == counts["turn.completed"] == completed > 0
    # The member left still answers.
    assert body_of(await turn(ids[0]))["data"]["outcome"] == "completed"


async def test_a_scale_up_failing_half_way_removes_what_it_created_and_records_the_failure(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    ids = await _deploy(api, "blocked", 2)
    taken = await api.post("/api/v1/agents", json={"name": "worker-4"})
    squatter = body_of(taken, 201)["data"]["id"]
    error_of(await _scale(api, "blocked", {"target_agents": 5}), 409, "AGENT_ALREADY_EXISTS")
    assert [m["id"] for m in await _members(api, "blocked")] == ids
    names = sorted(a["spec"]["name"] for a in (await all_agents(api)).values())
    assert names == ["worker-1", "worker-2", "worker-4"]
    events = await store.read(cluster_stream(namespace, "blocked"))
    assert [e.type for e in events][-2:] == ["cluster.resize_started", "cluster.resize_failed"]
    assert events[-1].data["agent_ids"] == ids
    assert events[-1].data["error"]["code"] == "AGENT_ALREADY_EXISTS"
    body_of(await api.delete(f"/api/v1/agents/{squatter}"))
    assert (
        len(body_of(await _scale(api, "blocked", {"target_agents": 5}))["data"]["agent_ids"]) == 5
    )


async def test_the_openapi_document_shows_both_forms_of_the_scale(api: httpx.AsyncClient) -> None:
    schema = body_of(await api.get("/schema/openapi.json"))
    scale = schema["paths"]["/api/v1/clusters/{name}/scale"]["post"]
    body = scale["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    fields = set(schema["components"]["schemas"][body]["properties"])
    assert fields == {"agent_name", "instances", "target_agents", "targetAgents", "replicas"}
    assert {"ResizeResult", "ScaleResult"} <= set(schema["components"]["schemas"])


async def test_concurrent_resizes_never_interleave(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    await _deploy(api, "race", 2)
    targets = [3, 4, 5, 6]
    answers = await asyncio.gather(*(_scale(api, "race", {"target_agents": n}) for n in targets))
    won = [n for n, a in zip(targets, answers, strict=True) if a.status_code == 200]
    for answer in answers:
        if answer.status_code != 200:
            error_of(answer, 409, "SCALING_IN_PROGRESS")
    assert won, [a.text for a in answers]
    events = [e.type for e in await store.read(cluster_stream(namespace, "race"))]
    assert events == ["cluster.created"] + ["cluster.resize_started", "cluster.resized"] * len(won)
    members = await _members(api, "race")
    assert len(members) in won and len(await all_agents(api)) == len(members)


async def test_a_paused_cluster_grows_with_agents_left_created_until_it_resumes(
    api: httpx.AsyncClient,
) -> None:
    await _deploy(api, "asleep", 1)
    body_of(await api.patch("/api/v1/clusters/asleep", json={"action": "pause"}))
    body_of(await _scale(api, "asleep", {"target_agents": 3}))
    assert [m["status"] for m in await _members(api, "asleep")] == ["paused", "created", "created"]
    body_of(await api.patch("/api/v1/clusters/asleep", json={"action": "resume"}))
    assert {m["status"] for m in await _members(api, "asleep")} == {"running"}
