"""The agents REST API through the real stack: lifecycle, concurrency, TOML, lists,
idempotency and read-your-writes."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from tests_support import edge_client

from parley.devstack.stack import Stack


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client bound to a namespace of its own, so tests never see each other's agents."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    async with edge_client(stack, timeout=10, headers={"X-Parley-Namespace": namespace}) as http:
        yield http


async def _create(api: httpx.AsyncClient, name: str, **spec: object) -> dict:
    response = await api.post("/api/v1/agents", json={"name": name, **spec})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _act(
    api: httpx.AsyncClient, agent_id: str, action: str, **headers: str
) -> httpx.Response:
    return await api.post(f"/api/v1/agents/{agent_id}/{action}", headers=headers)


async def test_an_agent_goes_through_start_pause_resume_stop_with_a_new_version_each_time(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/v1/agents", json={"name": "lifecycle", "capabilities": ["x"]})
    assert created.status_code == 201
    agent = created.json()["data"]
    assert agent["state"] == "created" and agent["version"] == 1
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"/api/v1/agents/{agent['id']}"
    assert created.headers["x-request-id"]
    expected = [
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
    ]
    for version, (action, state) in enumerate(expected, start=2):
        moved = await _act(api, agent["id"], action)
        assert moved.status_code == 200, moved.text
        assert moved.json()["data"]["state"] == state
        assert moved.json()["data"]["version"] == version
        assert moved.headers["etag"] == f'"{version}"'
    read = await api.get(f"/api/v1/agents/{agent['id']}")
    assert read.json()["data"]["state"] == "stopped" and read.headers["etag"] == '"5"'


async def test_a_created_agent_can_be_stopped_directly(api: httpx.AsyncClient) -> None:
    agent = await _create(api, "straight-to-stop")
    stopped = await _act(api, agent["id"], "stop")
    assert stopped.status_code == 200
    assert stopped.json()["data"]["state"] == "stopped"


async def test_the_actions_endpoint_applies_an_action_with_a_reason(api: httpx.AsyncClient) -> None:
    agent = await _create(api, "via-actions")
    moved = await api.post(
        f"/api/v1/agents/{agent['id']}/actions", json={"action": "start", "reason": "go"}
    )
    assert moved.status_code == 200 and moved.json()["data"]["state"] == "running"


async def test_illegal_transitions_are_409_invalid_state_transition(api: httpx.AsyncClient) -> None:
    agent = await _create(api, "illegal")
    for action in ("pause", "resume"):
        refused = await _act(api, agent["id"], action)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "INVALID_STATE_TRANSITION"
    await _act(api, agent["id"], "stop")
    refused = await _act(api, agent["id"], "start")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "INVALID_STATE_TRANSITION" and error["request_id"]
    assert (await api.get(f"/api/v1/agents/{agent['id']}")).json()["data"]["version"] == 2


async def test_a_stale_if_match_is_409_concurrency_conflict_and_a_fresh_one_succeeds(
    api: httpx.AsyncClient,
) -> None:
    agent = await _create(api, "if-match")
    await _act(api, agent["id"], "start")
    stale = await _act(api, agent["id"], "pause", **{"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "CONCURRENCY_CONFLICT"
    patched = await api.patch(
        f"/api/v1/agents/{agent['id']}", json={"description": "new"}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 409
    fresh = await _act(api, agent["id"], "pause", **{"If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.json()["data"]["version"] == 3


async def test_patch_changes_the_definition_and_merges_labels(api: httpx.AsyncClient) -> None:
    agent = await _create(api, "patched", labels={"a": "1", "b": "2"})
    patched = await api.patch(
        f"/api/v1/agents/{agent['id']}",
        json={"description": "changed", "labels": {"b": None, "c": "3"}},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["version"] == 2 and data["spec"]["description"] == "changed"
    assert data["spec"]["labels"] == {"a": "1", "c": "3"}


async def test_an_agent_is_created_from_a_toml_definition(api: httpx.AsyncClient) -> None:
    toml = (
        'name = "from-toml"\n'
        'description = "made of TOML"\n'
        'capabilities = ["summarize"]\n'
        "[params]\ntemperature = 0.5\n"
        '[labels]\nteam = "docs"\n'
    )
    created = await api.post(
        "/api/v1/agents", content=toml.encode(), headers={"Content-Type": "application/toml"}
    )
    assert created.status_code == 201, created.text
    spec = created.json()["data"]["spec"]
    assert spec["name"] == "from-toml" and spec["params"]["temperature"] == 0.5
    assert spec["labels"] == {"team": "docs"}


async def test_unicode_names_work(api: httpx.AsyncClient) -> None:
    for name in ("🤖 agent", "代理人", "סוכן", "Ünïcødé"):
        agent = await _create(api, name)
        read = await api.get(f"/api/v1/agents/{agent['id']}")
        assert read.json()["data"]["spec"]["name"] == name


async def test_a_duplicate_name_is_409_agent_already_exists(api: httpx.AsyncClient) -> None:
    await _create(api, "twice")
    again = await api.post("/api/v1/agents", json={"name": "twice"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "AGENT_ALREADY_EXISTS"


async def test_a_deleted_agent_disappears_and_frees_its_name(api: httpx.AsyncClient) -> None:
    agent = await _create(api, "short-lived")
    deleted = await api.delete(f"/api/v1/agents/{agent['id']}", headers={"If-Match": '"1"'})
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"id": agent["id"], "deleted": True, "version": 2}
    gone = await api.get(f"/api/v1/agents/{agent['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "AGENT_NOT_FOUND"
    assert (await api.get("/api/v1/agents")).json()["pagination"]["total_count"] == 0
    await _create(api, "short-lived")


async def test_an_unknown_agent_is_404_agent_not_found_for_every_verb(
    api: httpx.AsyncClient,
) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    calls = [
        api.get(f"/api/v1/agents/{missing}"),
        api.patch(f"/api/v1/agents/{missing}", json={"description": "x"}),
        api.delete(f"/api/v1/agents/{missing}"),
        api.post(f"/api/v1/agents/{missing}/start"),
        api.post(f"/api/v1/agents/{missing}/actions", json={"action": "stop"}),
        api.get("/api/v1/agents/not%20an%20id"),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "AGENT_NOT_FOUND"


async def test_an_agent_is_invisible_from_another_namespace(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    agent = await _create(api, "private")
    async with edge_client(stack, timeout=10) as other:
        response = await other.get(
            f"/api/v1/agents/{agent['id']}", params={"namespace": "someone-else"}
        )
    assert response.status_code == 404


async def test_a_retried_post_with_the_same_idempotency_key_returns_the_same_agent(
    api: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await api.post("/api/v1/agents", json={"name": "idem"}, headers=key)
    assert first.status_code == 201, first.text
    retried = await api.post("/api/v1/agents", json={"name": "idem"}, headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.json() == first.json()
    assert retried.headers["idempotent-replayed"] == "true"
    listed = await api.get("/api/v1/agents", params={"name": "idem"})
    assert listed.json()["pagination"]["total_count"] == 1
    different = await api.post("/api/v1/agents", json={"name": "idem-2"}, headers=key)
    assert different.status_code == 409


async def test_a_get_right_after_each_write_sees_the_write(api: httpx.AsyncClient) -> None:
    for i in range(20):
        created = await _create(api, f"ryw-{i}")
        read = await api.get(f"/api/v1/agents/{created['id']}")
        assert read.status_code == 200 and read.json()["data"] == created
        started = (await _act(api, created["id"], "start")).json()["data"]
        assert (await api.get(f"/api/v1/agents/{created['id']}")).json()["data"] == started
    listed = await api.get("/api/v1/agents", params={"state": "running"})
    assert listed.json()["pagination"]["total_count"] == 20


async def test_pages_of_ten_cover_every_agent_once_in_order(api: httpx.AsyncClient) -> None:
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with sem:
            return (await _create(api, f"page-{i:02d}"))["id"]

    ids = set(await asyncio.gather(*(one(i) for i in range(25))))
    for sort, key in (("created_at:asc", "created_at"), ("name:desc", "name")):
        seen: list[dict] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 10, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page = await api.get("/api/v1/agents", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert body["pagination"]["total_count"] == 25
            assert body["pagination"]["limit"] == 10
            seen.extend(body["data"])
            pages += 1
            if not body["pagination"]["has_more"]:
                assert body["pagination"]["next_cursor"] is None
                break
            cursor = body["pagination"]["next_cursor"]
        assert pages == 3
        assert [a["id"] for a in seen if a["id"] in ids] == [a["id"] for a in seen]
        assert len(seen) == 25 and {a["id"] for a in seen} == ids
        values = [a[key] if key != "name" else a["spec"]["name"] for a in seen]
        assert values == sorted(values, reverse=sort.endswith("desc"))


async def test_lists_filter_by_state_capability_label_trigger_and_name(
    api: httpx.AsyncClient,
) -> None:
    a = await _create(api, "f-a", capabilities=["search"], labels={"team": "red"})
    b = await _create(
        api,
        "f-b",
        capabilities=["search", "write"],
        labels={"team": "blue"},
        trigger={"type": "periodic", "interval_seconds": 60},
    )
    c = await _create(api, "f-c", capabilities=["write"], labels={"team": "red", "tier": "1"})
    await _act(api, b["id"], "start")

    async def ids(**params: object) -> set[str]:
        response = await api.get("/api/v1/agents", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["pagination"]["total_count"] == len(body["data"])
        return {agent["id"] for agent in body["data"]}

    assert await ids(state="running") == {b["id"]}
    assert await ids(state=["created", "running"]) == {a["id"], b["id"], c["id"]}
    assert await ids(capability="search") == {a["id"], b["id"]}
    assert await ids(label="team=red") == {a["id"], c["id"]}
    assert await ids(label=["team=red", "tier=1"]) == {c["id"]}
    assert await ids(trigger="periodic") == {b["id"]}
    assert await ids(name="f-c") == {c["id"]}
    assert await ids(capability="write", label="team=blue") == {b["id"]}
    await _act(api, b["id"], "stop")  # a running periodic agent would fire during later tests


async def test_readiness_health_and_openapi_are_served(stack: Stack) -> None:
    async with edge_client(stack, timeout=10) as http:
        for path in ("/health", "/livez", "/ready", "/readyz"):
            assert (await http.get(path)).status_code == 200
        schema = (await http.get("/schema/openapi.json")).json()
        assert schema["openapi"].startswith("3.1")
        create = schema["paths"]["/api/v1/agents"]["post"]
        assert create["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/AgentSpec"
        }
        assert "AgentView" in schema["components"]["schemas"]
        assert "AgentPatch" in schema["components"]["schemas"]
        assert (await http.get("/schema")).status_code == 200


async def test_an_action_without_a_body_works_whatever_content_type_the_client_sends(
    client,
) -> None:
    created = await client.post("/api/v1/agents", json={"name": f"bodiless-{uuid.uuid4().hex[:8]}"})
    agent_id = created.json()["data"]["id"]
    started = await client.post(
        f"/api/v1/agents/{agent_id}/start", headers={"content-type": "application/octet-stream"}
    )
    assert started.status_code == 200, started.text
    assert started.json()["data"]["state"] == "running"
