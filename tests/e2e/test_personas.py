"""`/api/v1/personas` through the real stack, and agents that name a persona."""

import re

import httpx
import msgspec
import pytest
from e2e_support import body_of
from e2e_support import error_of
from tests_support import edge_client

from parley.contracts.personas import persona_stream
from parley.devstack.stack import Stack
from parley.edge.projections.personas import PersonasProjection
from parley.eventstore.factory import open_store

BUILTINS = {"helpful-assistant", "code-reviewer", "concise-analyst"}
PIRATE = {"name": "pirate", "description": "Arr", "content": "Talk like a pirate.", "tags": ["fun"]}


async def _stream_length(stack: Stack, namespace: str, name: str) -> int:
    store = await open_store(nats_url=stack.nats_url)
    try:
        return len(await store.read(persona_stream(namespace, name)))
    finally:
        await store.close()


def _assert_error(response: httpx.Response, status: int, code: str) -> dict:
    error = error_of(response, status, code)
    assert re.fullmatch(r"[0-9a-f]{32}", error["trace_id"])
    return error


async def test_the_built_in_personas_are_listed_in_every_namespace(
    api: httpx.AsyncClient,
) -> None:
    body = body_of(await api.get("/api/v1/personas"))
    assert {p["name"] for p in body["data"]} == BUILTINS
    assert all(p["builtin"] and p["content"] and p["version"] == 0 for p in body["data"])
    assert body["pagination"]["total_count"] == 3 and body["pagination"]["has_more"] is False
    one = await api.get("/api/v1/personas/code-reviewer")
    assert one.status_code == 200 and one.json()["data"]["builtin"] is True


async def test_a_created_persona_is_readable_at_once_and_only_in_its_namespace(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    created = await api.post("/api/v1/personas", json=PIRATE)
    assert created.status_code == 201, created.text
    persona = created.json()["data"]
    assert persona["content"] == PIRATE["content"] and persona["tags"] == ["fun"]
    assert persona["builtin"] is False and persona["version"] == 1 and persona["created_at"]
    assert created.headers["location"] == "/api/v1/personas/pirate"
    read = await api.get("/api/v1/personas/pirate")
    assert read.status_code == 200 and read.json()["data"] == persona
    listed = (await api.get("/api/v1/personas")).json()["data"]
    assert [p["name"] for p in listed][-1] == "pirate" and len(listed) == 4
    assert [p["name"] for p in (await api.get("/api/v1/personas", params={"tag": "fun"})).json()[
        "data"]] == ["pirate"]  # fmt: skip
    async with edge_client(stack, timeout=10) as other:
        elsewhere = await other.get(
            "/api/v1/personas/pirate", headers={"X-Parley-Namespace": "elsewhere"}
        )
    _assert_error(elsewhere, 404, "PERSONA_NOT_FOUND")


async def test_creating_a_persona_twice_is_a_conflict(
    api: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    assert (await api.post("/api/v1/personas", json=PIRATE)).status_code == 201
    again = await api.post("/api/v1/personas", json={**PIRATE, "content": "other"})
    _assert_error(again, 409, "PERSONA_EXISTS")
    assert await _stream_length(stack, namespace, "pirate") == 1
    assert (await api.get("/api/v1/personas/pirate")).json()["data"]["content"] == PIRATE["content"]


async def test_a_built_in_name_cannot_be_taken(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/personas", json={"name": "code-reviewer", "content": "mine"})
    assert "built-in" in _assert_error(response, 409, "PERSONA_EXISTS")["message"]


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"name": "bad", "content": ', 400, "INVALID_REQUEST"),
        (b"", 400, "INVALID_REQUEST"),
        (b'{"name": "bad"}', 422, "VALIDATION_ERROR"),
        (b'{"name": "bad", "content": ""}', 422, "VALIDATION_ERROR"),
        (b'{"name": "Bad Name", "content": "x"}', 422, "VALIDATION_ERROR"),
        (b'{"name": "bad", "content": "x", "extra": true}', 422, "VALIDATION_ERROR"),
        (b'{"name": "bad", "content": "x", "tags": "notalist"}', 422, "VALIDATION_ERROR"),
        (b'["bad"]', 422, "VALIDATION_ERROR"),
    ],
    ids=["malformed", "empty", "no content", "empty content", "not a slug", "unknown field",
         "tags not a list", "not an object"],
)  # fmt: skip
async def test_a_bad_body_gets_its_error_and_appends_nothing(
    api: httpx.AsyncClient,
    stack: Stack,
    namespace: str,
    content: bytes,
    status: int,
    code: str,
) -> None:
    response = await api.post(
        "/api/v1/personas", content=content, headers={"Content-Type": "application/json"}
    )
    error = _assert_error(response, status, code)
    if status == 422:
        assert error["details"]["errors"][0]["field"].startswith("body")
    assert await _stream_length(stack, namespace, "bad") == 0


async def test_a_too_long_content_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/personas", json={"name": "long", "content": "x" * 100_001})
    assert _assert_error(response, 422, "VALIDATION_ERROR")["details"]["errors"][0]["field"] == (
        "body.content"
    )


async def test_a_deleted_persona_disappears_and_its_name_can_be_reused(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.post("/api/v1/personas", json=PIRATE)).status_code == 201
    deleted = await api.delete("/api/v1/personas/pirate")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"] == {"name": "pirate", "deleted": True, "version": 2}
    _assert_error(await api.get("/api/v1/personas/pirate"), 404, "PERSONA_NOT_FOUND")
    _assert_error(await api.delete("/api/v1/personas/pirate"), 404, "PERSONA_NOT_FOUND")
    again = await api.post("/api/v1/personas", json={**PIRATE, "content": "Yo ho."})
    assert again.status_code == 201 and again.json()["data"]["version"] == 3


async def test_deleting_a_missing_persona_is_404(api: httpx.AsyncClient) -> None:
    _assert_error(await api.delete("/api/v1/personas/ghost"), 404, "PERSONA_NOT_FOUND")
    _assert_error(await api.delete("/api/v1/personas/Not%20A%20Slug"), 404, "PERSONA_NOT_FOUND")


async def test_a_built_in_persona_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/personas/helpful-assistant")
    assert "built-in" in _assert_error(response, 409, "PERSONA_READ_ONLY")["message"]
    assert (await api.get("/api/v1/personas/helpful-assistant")).status_code == 200


async def test_an_agent_naming_an_unknown_persona_is_refused_on_the_persona_field(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/v1/agents", json={"name": "a", "persona": "nobody"})
    error = _assert_error(response, 422, "VALIDATION_ERROR")
    assert [e["field"] for e in error["details"]["errors"]] == ["persona"]
    assert "GET /api/v1/personas" in error["message"]
    assert (await api.get("/api/v1/agents", params={"name": "a"})).json()["data"] == []


async def test_agents_may_name_a_built_in_or_a_created_persona(api: httpx.AsyncClient) -> None:
    builtin = await api.post("/api/v1/agents", json={"name": "b", "persona": "concise-analyst"})
    assert builtin.status_code == 201, builtin.text
    assert (await api.post("/api/v1/personas", json=PIRATE)).status_code == 201
    created = await api.post("/api/v1/agents", json={"name": "c", "persona": "pirate"})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["spec"]["persona"] == "pirate"


async def test_an_update_to_an_unknown_persona_is_refused_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/v1/agents", json={"name": "u", "system_prompt": "hi"})
    agent_id = created.json()["data"]["id"]
    refused = await api.patch(f"/api/v1/agents/{agent_id}", json={"persona": "nobody"})
    assert _assert_error(refused, 422, "VALIDATION_ERROR")["details"]["errors"][0]["field"] == (
        "persona"
    )
    moved = await api.patch(f"/api/v1/agents/{agent_id}", json={"persona": "code-reviewer"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["version"] == 2
    assert moved.json()["data"]["spec"]["persona"] == "code-reviewer"


async def test_a_personas_projection_rebuilt_from_position_zero_equals_the_live_one(
    api: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    for i in range(6):
        body = {"name": f"p{i}", "content": f"persona {i}"}
        assert (await api.post("/api/v1/personas", json=body)).status_code == 201
        if i % 2 == 0:
            assert (await api.delete(f"/api/v1/personas/p{i}")).status_code == 200
    assert (await api.post("/api/v1/personas", json={"name": "p0", "content": "back"})).is_success
    live = (await api.get("/api/v1/personas")).json()["data"]

    store = await open_store(nats_url=stack.nats_url)
    rebuilt = PersonasProjection(store)
    try:
        await rebuilt.start()
        assert await rebuilt.wait_for(rebuilt.target_position, within=10)
        views = msgspec.to_builtins(rebuilt.personas(namespace))
    finally:
        await rebuilt.stop()
        await store.close()
    assert views == live
    assert [p["name"] for p in live if not p["builtin"]] == ["p0", "p1", "p3", "p5"]


async def test_the_openapi_document_describes_the_persona_and_model_routes(
    api: httpx.AsyncClient,
) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    create = schema["paths"]["/api/v1/personas"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PersonaSpec"
    }
    assert "/api/v1/models" in schema["paths"]
    assert "ModelInfo" in schema["components"]["schemas"]
