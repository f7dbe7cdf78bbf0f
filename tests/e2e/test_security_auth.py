"""Identity and tenancy through the real edge, one test (or a few) per OWASP API Security
Top 10 (2023) risk that the edge's authentication and namespaces answer:

- API1 BOLA: another namespace's agent, session, task, message or turn by id is 404.
- API2 broken authentication: missing, malformed, unknown, revoked, expired and rotated keys;
  bad JWTs (expired, wrong audience, wrong signature, malformed) on a JWT-enabled edge.
- API3 BOPLA: a body setting `namespace`, `state`, `version` or a key's grants is refused or
  ignored, never applied.
- API5 BFLA: a viewer cannot write, an operator cannot manage keys.
- API9 inventory: every operation of the OpenAPI document carries its security.
- Streams: SSE and `/ws` carry only the caller's namespaces, whatever the filter; a foreign
  `Origin` cannot open `/ws`; tickets are single-use; keys never travel in URLs.
"""

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from httpx_sse import aconnect_sse
from tests_support import admin_key
from tests_support import auth_headers
from tests_support import stream_events
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus

from parley.contracts.acl import conversation_stream
from parley.contracts.tasks import task_stream
from parley.devstack.nats import free_port
from parley.devstack.stack import Stack

KEYS = "/api/v1/keys"
AGENTS = "/api/v1/agents"
STREAM_TIMEOUT = httpx.Timeout(10, read=20)


def _ns(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_key(
    client: httpx.AsyncClient, roles: list[str], namespaces: list[str], **body: Any
) -> tuple[str, dict[str, Any]]:
    """A new key (its secret, its view) made by the admin client."""
    response = await client.post(
        KEYS,
        json={"name": f"test {roles[0]}", "roles": roles, "namespaces": namespaces, **body},
        headers={"X-Parley-Namespace": namespaces[0] if namespaces[0] != "*" else "default"},
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return data["secret"], data["key"]


def as_key(stack: Stack, secret: str, namespace: str | None = None) -> httpx.AsyncClient:
    headers = {"X-API-Key": secret}
    if namespace:
        headers["X-Parley-Namespace"] = namespace
    return httpx.AsyncClient(base_url=stack.edge_url, headers=headers, timeout=10)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


async def _agent(http: httpx.AsyncClient, **spec: Any) -> str:
    response = await http.post(AGENTS, json={"name": f"sec-{uuid.uuid4().hex[:8]}", **spec})
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


@pytest.fixture
async def tenants(client: httpx.AsyncClient, stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """Two namespaces, each with an operator key and a viewer key of its own."""
    a, b = _ns("tenant-a"), _ns("tenant-b")
    found: dict[str, Any] = {"a": a, "b": b}
    for name, ns in (("a", a), ("b", b)):
        found[f"{name}_operator"], key = await make_key(client, ["operator"], [ns])
        found[f"{name}_operator_id"] = key["key_id"]
        found[f"{name}_viewer"], _ = await make_key(client, ["viewer"], [ns])
    yield found


# --- API2: broken authentication --------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "bogus"},
        {"X-API-Key": "pk_nope_" + "A" * 43},
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "malformed key", "unknown key", "bogus bearer", "basic", "empty bearer"],
)
async def test_a_request_without_a_valid_credential_is_401_with_a_challenge(
    stack: Stack, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as anonymous:
        for method, path in (("GET", AGENTS), ("POST", AGENTS), ("GET", "/api/v1/events")):
            response = await anonymous.request(method, path, headers=headers, json={"name": "x"})
            error = _error(response, 401, "UNAUTHORIZED")
            assert response.headers["www-authenticate"].split()[0] in ("ApiKey", "Bearer")
            assert error["request_id"]
            for value in headers.values():  # the credential is never echoed
                assert value not in response.text or value in ("Bearer", "bogus")


async def test_health_and_the_docs_need_no_key(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as anonymous:
        for path in ("/health", "/livez", "/ready", "/readyz", "/schema/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200, path


async def test_a_key_in_the_url_is_refused(stack: Stack) -> None:
    key = admin_key(stack)
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as anonymous:
        _error(await anonymous.get(AGENTS, params={"api_key": key}), 401, "UNAUTHORIZED")


async def test_a_revoked_key_stops_working_within_a_second(client, stack: Stack) -> None:
    secret, key = await make_key(client, ["viewer"], ["default"])
    async with as_key(stack, secret) as viewer:
        assert (await viewer.get(AGENTS)).status_code == 200
        revoked = await client.post(f"{KEYS}/{key['key_id']}/revoke", json={"reason": "test"})
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["data"]["revoked_at"]
        started = time.monotonic()
        while (await viewer.get(AGENTS)).status_code != 401:
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.02)
        _error(await viewer.get(AGENTS), 401, "UNAUTHORIZED")


async def test_an_open_websocket_ends_when_its_key_is_revoked(client, stack: Stack) -> None:
    secret, key = await make_key(client, ["viewer"], ["default"])
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    async with connect(url, additional_headers={"X-API-Key": secret}) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "s"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        await client.post(f"{KEYS}/{key['key_id']}/revoke")
        async with asyncio.timeout(5):
            # events recorded before the edge saw the revocation may still come first (the
            # stack is shared, and the revocation is an event of the namespace too)
            while (frame := json.loads(await ws.recv()))["type"] == "event":
                pass
            assert frame["type"] == "error" and frame["code"] == "UNAUTHORIZED"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_an_expired_key_is_refused(client, stack: Stack) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    secret, _ = await make_key(client, ["viewer"], ["default"], expires_at=soon)
    async with as_key(stack, secret) as viewer:
        assert (await viewer.get(AGENTS)).status_code == 200
        await asyncio.sleep(2.0)
        error = _error(await viewer.get(AGENTS), 401, "UNAUTHORIZED")
        assert "expired" in error["message"]


async def test_keys_are_listed_read_and_rotated_without_their_secret(client, stack) -> None:
    secret, key = await make_key(client, ["operator"], ["default"])
    listed = (await client.get(KEYS)).json()["data"]
    assert key["key_id"] in [k["key_id"] for k in listed]
    read = (await client.get(f"{KEYS}/{key['key_id']}")).json()["data"]
    assert read["prefix"] == f"pk_{key['key_id']}" and "secret" not in read
    assert secret not in json.dumps(listed) and "digest" not in read

    rotated = await client.post(f"{KEYS}/{key['key_id']}/rotate")
    assert rotated.status_code == 201, rotated.text
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret != secret
    async with as_key(stack, secret) as old, as_key(stack, new_secret) as new:
        _error(await old.get(AGENTS), 401, "UNAUTHORIZED")
        assert (await new.get(AGENTS)).status_code == 200
    _error(await client.get(f"{KEYS}/nope"), 404, "NOT_FOUND")


# --- API5: broken function level authorisation -------------------------------------------


async def test_a_viewer_reads_but_cannot_write(stack: Stack, tenants) -> None:
    async with as_key(stack, tenants["a_viewer"], tenants["a"]) as viewer:
        assert (await viewer.get(AGENTS)).status_code == 200
        _error(await viewer.post(AGENTS, json={"name": "nope"}), 403, "FORBIDDEN")
        _error(await viewer.delete(f"{AGENTS}/whatever"), 403, "FORBIDDEN")
        _error(await viewer.post("/api/v1/events", json={"type": "x.y"}), 403, "FORBIDDEN")
        _error(await viewer.get(KEYS), 403, "FORBIDDEN")
        assert (await viewer.get(AGENTS)).json()["data"] == []


async def test_a_key_of_other_namespaces_reads_the_catalogue_and_streams(stack, tenants) -> None:
    async with as_key(stack, tenants["a_viewer"]) as viewer:  # no namespace named
        for path in ("/api/v1/models", "/api/v1/tools", "/api/v1/strategies", KEYS):
            expected = 403 if path == KEYS else 200
            assert (await viewer.get(path)).status_code == expected, path
        assert (await viewer.post("/api/v1/ws-tickets")).status_code == 201
        assert (await viewer.get(AGENTS)).status_code == 404  # `default` is not its own


async def test_an_operator_writes_but_cannot_manage_keys(stack: Stack, tenants) -> None:
    async with as_key(stack, tenants["a_operator"], tenants["a"]) as operator:
        await _agent(operator)
        _error(await operator.get(KEYS), 403, "FORBIDDEN")
        body = {"name": "escalate", "roles": ["admin"], "namespaces": ["*"]}
        _error(await operator.post(KEYS, json=body), 403, "FORBIDDEN")


async def test_a_namespace_admin_cannot_grant_what_it_does_not_hold(client, stack) -> None:
    ns = _ns("adm")
    secret, _ = await make_key(client, ["admin"], [ns])
    async with as_key(stack, secret, ns) as admin:
        for grant in (["*"], ["default"], [ns, "other"]):
            body = {"name": "escalate", "roles": ["admin"], "namespaces": grant}
            _error(await admin.post(KEYS, json=body), 403, "FORBIDDEN")
        made = await admin.post(KEYS, json={"name": "ok", "roles": ["viewer"]})
        assert made.status_code == 201, made.text
        assert made.json()["data"]["key"]["namespaces"] == [ns]
        bootstrap = await admin.get(f"{KEYS}/bootstrap")  # the `*` admin lives in default
        _error(bootstrap, 404, "NOT_FOUND")


# --- API1: broken object level authorisation --------------------------------------------


async def test_another_namespaces_resources_are_404_whoever_asks(client, stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    async with as_key(stack, tenants["a_operator"], a) as owner:
        agent_id = await _agent(owner)
        task = await owner.post("/api/v1/tasks", json={"name": "secret work"})
        assert task.status_code == 201, task.text
        task_id = task.json()["data"]["task_id"]
        started = await owner.post(f"{AGENTS}/{agent_id}/start")
        assert started.status_code == 200, started.text
        message = await owner.post(
            "/api/v1/messages",
            json={"performative": "inform", "sender": "user:a", "receivers": [agent_id],
                  "content": "for a only"},
        )  # fmt: skip
        assert message.status_code == 202, message.text
        message_id = message.json()["data"]["message_id"]
    paths = [
        f"{AGENTS}/{agent_id}",
        f"{AGENTS}/{agent_id}/executions",
        f"/api/v1/tasks/{task_id}",
        f"/api/v1/messages/{message_id}",
    ]
    async with as_key(stack, tenants["b_operator"], b) as other:
        for path in paths:
            response = await other.get(path)
            assert response.status_code == 404, (path, response.text)
            for_a = await other.get(path, headers={"X-Parley-Namespace": a})
            assert for_a.status_code == 404, (path, for_a.text)  # not 403: no existence leak
        _error(await other.delete(f"{AGENTS}/{agent_id}"), 404, "AGENT_NOT_FOUND")
        _error(await other.post(f"{AGENTS}/{agent_id}/stop"), 404, "AGENT_NOT_FOUND")
        listed = (await other.get(AGENTS, params={"limit": 200})).json()["data"]
        assert agent_id not in [agent["id"] for agent in listed]
    async with as_key(stack, tenants["b_operator"]) as other:
        assert (await other.get(AGENTS, params={"namespace": a})).status_code == 404
    # even the `*` admin sees A's agent only in A
    assert (
        await client.get(f"{AGENTS}/{agent_id}", headers={"X-Parley-Namespace": b})
    ).status_code == 404  # noqa: E501
    assert (
        await client.get(f"{AGENTS}/{agent_id}", headers={"X-Parley-Namespace": a})
    ).status_code == 200  # noqa: E501


async def test_messages_and_tasks_cannot_reach_another_namespaces_agent(stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    async with as_key(stack, tenants["a_operator"], a) as owner:
        victim = await _agent(owner)
        assert (await owner.post(f"{AGENTS}/{victim}/start")).status_code == 200
    async with as_key(stack, tenants["b_operator"], b) as other:
        message = {"performative": "inform", "sender": "user:b", "receivers": [victim]}
        sent = await other.post("/api/v1/messages", json={**message, "content": "psst"})
        assert sent.status_code == 422, sent.text  # "does not exist in namespace b"
        assert b in sent.json()["error"]["message"]
        task = await other.post("/api/v1/tasks", json={"name": "t", "participants": [victim]})
        task_id = task.json()["data"]["task_id"]
        body = {"wait": True, "max_wait_seconds": 1}
        tendered = await other.post(f"/api/v1/tasks/{task_id}/distribute", json=body)
        _error(tendered, 404, "AGENT_NOT_FOUND")
    async with as_key(stack, tenants["a_viewer"], a) as watcher:
        inbox = await watcher.get("/api/v1/messages", params={"agent_id": victim})
        assert inbox.json()["data"] == []


async def test_another_namespaces_session_is_404(client, stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    async with as_key(stack, tenants["a_operator"], a) as owner:
        created = await owner.post("/api/v1/sessions", json={"settings": {"model": "offline-1"}})
        assert created.status_code == 201, created.text
        session_id = created.json()["data"]["id"]
    async with as_key(stack, tenants["b_operator"], b) as other:
        for path in (f"/api/v1/sessions/{session_id}", f"/api/v1/sessions/{session_id}/files"):
            assert (await other.get(path)).status_code == 404, path
        chat = await other.post(f"/api/v1/sessions/{session_id}/chat", json={"message": "hi"})
        assert chat.status_code == 404, chat.text


async def test_names_of_another_namespace_are_neither_visible_nor_taken(stack, tenants) -> None:
    name = f"n-{uuid.uuid4().hex[:8]}"
    persona = {"name": name, "content": "the secret persona"}
    cluster = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {"agents": [{"name": "worker"}]},
    }
    async with as_key(stack, tenants["a_operator"], tenants["a"]) as owner:
        assert (await owner.post("/api/v1/personas", json=persona)).status_code == 201
        made = await owner.post("/api/v1/clusters", params={"start": "false"}, json=cluster)
        assert made.status_code == 201, made.text
    async with as_key(stack, tenants["b_operator"], tenants["b"]) as other:
        for path in (f"/api/v1/personas/{name}", f"/api/v1/clusters/{name}"):
            assert (await other.get(path)).status_code == 404, path
        listed = (await other.get("/api/v1/clusters")).json()["data"]
        assert name not in json.dumps(listed)
        # the same names are free in B: nothing says A has them
        assert (await other.post("/api/v1/personas", json=persona)).status_code == 201
        again = await other.post("/api/v1/clusters", params={"start": "false"}, json=cluster)
        assert again.status_code == 201, again.text


async def test_a_task_id_of_another_namespace_can_be_reused(stack: Stack, tenants) -> None:
    # Task ids are scoped by namespace: no 409 "task id is taken" reveals another's task.
    task_id = f"shared-{uuid.uuid4().hex[:8]}"
    for tenant in ("a", "b"):
        async with as_key(stack, tenants[f"{tenant}_operator"], tenants[tenant]) as http:
            body = {"name": f"{tenant}'s work", "task_id": task_id}
            response = await http.post("/api/v1/tasks", json=body)
            assert response.status_code == 201, response.text
            assert response.json()["data"]["name"] == f"{tenant}'s work"
            again = await http.post("/api/v1/tasks", json=body)
            assert again.status_code == 409, again.text  # taken in its own namespace
    async with as_key(stack, tenants["a_operator"], tenants["a"]) as http:
        cancelled = await http.post(f"/api/v1/tasks/{task_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
    for tenant, status in (("a", "cancelled"), ("b", "created")):
        async with as_key(stack, tenants[f"{tenant}_viewer"], tenants[tenant]) as http:
            read = await http.get(f"/api/v1/tasks/{task_id}")
            assert read.status_code == 200, read.text
            data = read.json()["data"]
            assert (data["name"], data["namespace"]) == (f"{tenant}'s work", tenants[tenant])
            assert data["status"] == status
            listed = (await http.get("/api/v1/tasks", params={"limit": 200})).json()["data"]
            assert [t["name"] for t in listed if t["task_id"] == task_id] == [f"{tenant}'s work"]
    tasks = [await stream_events(stack, task_stream(tenants[t], task_id)) for t in ("a", "b")]
    assert [[e.namespace for e in events] for events in tasks] == [
        [tenants["a"]] * 2,
        [tenants["b"]],
    ]
    assert await stream_events(stack, task_stream("default", task_id)) == []


async def test_a_conversation_id_of_another_namespace_is_another_conversation(
    stack: Stack, tenants
) -> None:
    conversation = f"shared-{uuid.uuid4().hex[:8]}"
    for tenant in ("a", "b", "a"):
        async with as_key(stack, tenants[f"{tenant}_operator"], tenants[tenant]) as http:
            message = {
                "performative": "inform",
                "sender": f"user:{tenant}",
                "receivers": [f"user:{tenant}-friend"],
                "content": f"for {tenant} only",
                "conversation_id": conversation,
            }
            sent = await http.post("/api/v1/messages", json=message)
            assert sent.status_code == 202, sent.text
            assert sent.json()["data"]["conversation_id"] == conversation
    for tenant, count in (("a", 2), ("b", 1)):
        async with as_key(stack, tenants[f"{tenant}_viewer"], tenants[tenant]) as http:
            history = await http.get("/api/v1/messages", params={"conversation_id": conversation})
            assert history.status_code == 200, history.text
            data = history.json()["data"]
            assert [m["content"] for m in data] == [f"for {tenant} only"] * count
            assert {m["namespace"] for m in data} == {tenants[tenant]}
        events = await stream_events(stack, conversation_stream(tenants[tenant], conversation))
        assert [e.namespace for e in events] == [tenants[tenant]] * count
    assert await stream_events(stack, conversation_stream("default", conversation)) == []


# --- API3: broken object property level authorisation -----------------------------------


async def test_a_body_cannot_set_namespace_state_or_version(stack: Stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    async with as_key(stack, tenants["a_operator"], a) as owner:
        for extra in ({"namespace": b}, {"state": "running"}, {"version": 42}, {"id": "mine"}):
            response = await owner.post(
                AGENTS, json={"name": f"bopla-{uuid.uuid4().hex[:6]}", **extra}
            )
            if response.status_code == 201:  # ignored: never applied
                data = response.json()["data"]
                assert data.get("namespace", a) == a and data["state"] != "running"
                assert data["version"] != 42 and data["id"] != "mine"
            else:
                assert response.status_code in (400, 422), response.text
        agent_id = await _agent(owner)
        patched = await owner.patch(
            f"{AGENTS}/{agent_id}", json={"state": "running", "namespace": b, "version": 9}
        )
        if patched.status_code == 200:
            data = patched.json()["data"]
            assert data["state"] != "running" and data["version"] != 9
        else:
            assert patched.status_code in (400, 422), patched.text
        assert (await owner.get(f"{AGENTS}/{agent_id}")).json()["data"]["state"] != "running"
    async with as_key(stack, tenants["b_operator"], b) as other:
        assert (await other.get(AGENTS)).json()["data"] == []


async def test_a_key_body_cannot_pick_its_own_secret_or_owner(client) -> None:
    body = {"name": "x", "roles": ["viewer"], "secret": "pk_mine", "created_by": "someone"}
    response = await client.post(KEYS, json=body)
    assert response.status_code in (400, 422), response.text


# --- API9: inventory --------------------------------------------------------------------


async def test_every_operation_in_the_openapi_document_carries_security(client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {"type": "apiKey", "name": "X-API-Key", "in": "header"} | {
        "description": schemes["ApiKeyAuth"]["description"]
    }
    assert schemes["BearerAuth"]["type"] == "http" and schemes["BearerAuth"]["scheme"] == "bearer"
    operations = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            operations += 1
            if "health" in operation.get("tags", []):
                assert path in ("/health", "/livez", "/ready", "/readyz", "/metrics")
                continue
            assert operation.get("security") == [{"ApiKeyAuth": []}, {"BearerAuth": []}], (
                method,
                path,
            )
    assert operations > 50
    assert f"{KEYS}/{{key_id}}/revoke" in document["paths"]
    assert "/api/v1/ws-tickets" in document["paths"]


# --- streams: namespaces are walls --------------------------------------------------------


async def _created_in(stack: Stack, secret: str, ns: str) -> str:
    async with as_key(stack, secret, ns) as http:
        return await _agent(http, system_prompt=f"the secret prompt of {ns}")


async def _streamed(
    http: httpx.AsyncClient, params: dict[str, str], last: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The events ``GET /api/v1/events`` with ``params`` streams to ``http`` (keep-alives
    left out), up to the first for which ``last(event)`` holds."""
    seen: list[dict[str, Any]] = []
    async with aconnect_sse(
        http, "GET", "/api/v1/events", params=params, timeout=STREAM_TIMEOUT
    ) as source:
        async for sse in source.aiter_sse():
            if sse.event == "keep-alive" or not sse.data:
                continue
            seen.append(json.loads(sse.data))
            if last(seen[-1]):
                break
    return seen


def _created(agent_id: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an event is the ``agent.created`` of ``agent_id``."""
    return lambda event: event["subject"] == agent_id and event["type"] == "agent.created"


async def test_sse_carries_only_the_callers_namespaces(client, stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    start = (await client.get("/ready")).json()["data"]["applied_position"]
    hidden = await _created_in(stack, tenants["a_operator"], a)
    marker = await _created_in(stack, tenants["b_operator"], b)
    async with as_key(stack, tenants["b_viewer"]) as viewer:
        params = {"from_position": str(start), "type": "agent.*"}
        seen = await _streamed(viewer, params, _created(marker))
        asked = await viewer.get("/api/v1/events", params={"namespace": a, "from_position": "0"})
        assert asked.status_code == 404  # a filter cannot reach past the walls
    assert seen and {event["namespace"] for event in seen} == {b}
    assert hidden not in {event["subject"] for event in seen}
    assert not any(event["type"].startswith("apikey.") for event in seen)


async def test_a_named_namespace_narrows_a_stream_of_several(client, stack, tenants) -> None:
    a, b = tenants["a"], tenants["b"]
    both, _ = await make_key(client, ["viewer"], [a, b])
    start = (await client.get("/ready")).json()["data"]["applied_position"]
    await _created_in(stack, tenants["a_operator"], a)
    marker = await _created_in(stack, tenants["b_operator"], b)
    async with as_key(stack, both, b) as viewer:
        params = {"from_position": str(start), "type": "agent.created"}
        seen = await _streamed(viewer, params, lambda event: event["subject"] == marker)
    assert {event["namespace"] for event in seen} == {b}


async def test_ws_carries_only_the_callers_namespaces_whatever_the_filter(
    client, stack, tenants
) -> None:
    a, b = tenants["a"], tenants["b"]
    start = (await client.get("/ready")).json()["data"]["applied_position"]
    hidden = await _created_in(stack, tenants["a_operator"], a)
    marker = await _created_in(stack, tenants["b_operator"], b)
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    seen: list[dict[str, Any]] = []
    async with connect(url, additional_headers={"X-API-Key": tenants["b_viewer"]}) as ws:
        # a filter naming A's namespace, and one naming nothing: neither reaches A
        for sub, flt in (("a", {"namespace": a}), ("all", {})):
            frame = {"type": "subscribe", "id": sub, "filter": flt, "from_position": start}
            await ws.send(json.dumps(frame))
        async with asyncio.timeout(20):
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] != "event":
                    continue
                seen.append(frame)
                event = frame["event"]
                if event["subject"] == marker and event["type"] == "agent.created":
                    break
    assert all(frame["subscription"] == "all" for frame in seen)
    assert {frame["event"]["namespace"] for frame in seen} == {b}
    assert hidden not in {frame["event"]["subject"] for frame in seen}
    assert not any(frame["event"]["type"].startswith("apikey.") for frame in seen)


async def test_apikey_events_reach_admins_only(client, stack, tenants) -> None:
    start = (await client.get("/ready")).json()["data"]["applied_position"]
    _, key = await make_key(client, ["viewer"], ["default"])
    wanted = {"from_position": str(start), "type": "apikey.*"}
    streamed = await _streamed(client, wanted, lambda event: event["subject"] == key["key_id"])
    assert streamed[-1]["subject"] == key["key_id"]
    assert "pk_" not in json.dumps(streamed[-1]).replace(key["prefix"], "")
    everywhere_viewer, _ = await make_key(client, ["viewer"], ["*"])
    async with as_key(stack, everywhere_viewer) as viewer:
        marker = await _created_in(stack, tenants["a_operator"], tenants["a"])
        params = {"from_position": str(start)}
        seen = await _streamed(viewer, params, lambda event: event["subject"] == marker)
    assert not any(event["type"].startswith("apikey.") for event in seen), seen


async def test_the_event_log_is_the_audit_log(client, stack, tenants) -> None:
    start = (await client.get("/ready")).json()["data"]["applied_position"]
    agent_id = await _created_in(stack, tenants["a_operator"], tenants["a"])
    actor = f"key:{tenants['a_operator_id']}"
    params = {"from_position": str(start), "actor": actor}
    seen = await _streamed(client, params, _created(agent_id))
    assert all(event["actor"] == actor for event in seen), seen


# --- browsers: origins, tickets, cross-site writes -----------------------------------------


async def test_a_foreign_origin_cannot_open_a_websocket(stack: Stack) -> None:
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    headers = {**auth_headers(stack), "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers=headers):
            pass
    own = {**auth_headers(stack), "Origin": f"http://127.0.0.1:{stack.edge_port}"}
    async with connect(url, additional_headers=own) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_a_ticket_opens_one_websocket_once_and_a_url_key_none(client, stack) -> None:
    minted = await client.post("/api/v1/ws-tickets")
    assert minted.status_code == 201, minted.text
    ticket = minted.json()["data"]["ticket"]
    assert minted.json()["data"]["expires_in"] == 30
    url = stack.edge_url.replace("http://", "ws://", 1) + "/ws"
    async with connect(f"{url}?ticket={ticket}") as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"
    for refused in (f"{url}?ticket={ticket}", f"{url}?api_key={admin_key(stack)}", url):
        with pytest.raises(InvalidStatus):
            async with connect(refused):
                pass


async def test_the_chat_socket_takes_a_ticket_and_needs_the_message_role(
    client, stack: Stack
) -> None:
    agent_id = await _agent(client)
    url = stack.edge_url.replace("http://", "ws://", 1) + f"/api/v1/agents/{agent_id}/ws"
    ticket = (await client.post("/api/v1/ws-tickets")).json()["data"]["ticket"]
    async with connect(f"{url}?ticket={ticket}") as ws:
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(await ws.recv())["type"] == "pong"
    viewer, _ = await make_key(client, ["viewer"], ["default"])
    for refused in (
        {"X-API-Key": viewer},  # a viewer may not message
        {**auth_headers(stack), "Origin": "http://evil.example"},
        {},
    ):
        with pytest.raises(InvalidStatus):
            async with connect(url, additional_headers=refused):
                pass


async def test_a_cross_site_form_post_without_a_key_changes_nothing(client, stack) -> None:
    before = (await client.get(AGENTS, params={"limit": 200})).json()["pagination"]
    agent_id = await _agent(client)
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as browser:
        headers = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
        for path in (AGENTS, f"{AGENTS}/{agent_id}/start", f"{AGENTS}/{agent_id}/webhook"):
            response = await browser.post(path, content=b'{"name":"csrf"}', headers=headers)
            _error(response, 401, "UNAUTHORIZED")
    after = (await client.get(AGENTS, params={"limit": 200})).json()["pagination"]
    assert after["total_count"] == before["total_count"] + 1
    assert (await client.get(f"{AGENTS}/{agent_id}")).json()["data"]["state"] != "running"


# --- JWT bearer tokens (a second edge on the same stack, HS256 secret file) ---------------


@pytest.fixture(scope="module")
def jwt_edge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    secret = secrets.token_urlsafe(48)
    path = tmp_path_factory.mktemp("jwt") / "secret"
    path.write_text(secret)
    port = free_port()
    env = {
        "PARLEY_NATS_URL": stack.nats_url,  # with the stack's NATS credentials, if it has any
        "PARLEY_EDGE_PORT": str(port),
        "PARLEY_JWT_SECRET_FILE": str(path),
        "PARLEY_JWT_ISSUER": "https://idp.test",
        "PARLEY_JWT_AUDIENCE": "parley",
    }
    process = stack.start_process("edge", key="edge-jwt", env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the JWT edge exited; see its log"
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    yield url, secret
    stack.stop_process("edge-jwt")


def _token(secret: str, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": "https://idp.test",
        "aud": "parley",
        "sub": "alice",
        "exp": now + 300,
        "iat": now,
        "roles": ["viewer"],
        "namespaces": ["default"],
        **claims,
    }
    return jwt.encode(body, secret, algorithm="HS256")


async def test_jwt_bearer_tokens_are_verified(jwt_edge) -> None:
    url, secret = jwt_edge
    bad = {
        "expired": _token(secret, exp=int(time.time()) - 60),
        "wrong audience": _token(secret, aud="someone-else"),
        "wrong issuer": _token(secret, iss="https://evil.test"),
        "wrong signature": _token(secrets.token_urlsafe(48)),
        "malformed": "not.a.jwt",
        "no roles": _token(secret, roles=[]),
    }
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        good = await http.get(AGENTS, headers={"Authorization": f"Bearer {_token(secret)}"})
        assert good.status_code == 200, good.text
        viewer = {"Authorization": f"Bearer {_token(secret)}"}
        _error(await http.post(AGENTS, json={"name": "x"}, headers=viewer), 403, "FORBIDDEN")
        for why, token in bad.items():
            response = await http.get(AGENTS, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (why, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), why
            assert token not in response.text


async def test_a_revocation_reaches_every_edge_process_within_a_second(client, jwt_edge) -> None:
    url, _ = jwt_edge  # a second edge process on the same store
    secret, key = await make_key(client, ["viewer"], ["default"])
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": secret}, timeout=10) as far:
        started = time.monotonic()
        while (await far.get(AGENTS)).status_code == 401:  # the create reaches it, too
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.02)
        assert (await client.post(f"{KEYS}/{key['key_id']}/revoke")).status_code == 200
        started = time.monotonic()
        while (await far.get(AGENTS)).status_code != 401:
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.02)
