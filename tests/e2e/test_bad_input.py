"""Bad input through the real edge: every case gets its status and code in the error
envelope, never a 500, and none of them leaves an event behind."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests_support import edge_client

from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

NESTED_BRACKETS = b"[" * 100_000
NESTED_OBJECTS = b'{"name": "deep", "tools": [{"name": "t", "config": ' + b'{"a": ' * 100_000
JSON = {"Content-Type": "application/json"}
TOML = {"Content-Type": "application/toml"}
AGENT = "{agent}"  # replaced by the id of an agent created before the table runs


def case(
    id: str,
    method: str,
    path: str,
    status: int,
    code: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    return pytest.param(method, path, content, headers or {}, params, status, code, id=id)


# fmt: off  (one case per two lines reads as a table)
CASES = [
    case(
        "malformed JSON",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'{"name": ',
        headers=JSON,
    ),
    case(
        "JSON with trailing garbage",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'{"name": "x"} trailing',
        headers=JSON,
    ),
    case(
        "invalid UTF-8 in a string",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'{"name": "\xff\xfe"}',
        headers=JSON,
    ),
    case(
        "invalid UTF-8 outside strings",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b"\xff\xfe\xfd",
        headers=JSON,
    ),
    case(
        "a lone surrogate escape",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'{"name": "\\ud800"}',
        headers=JSON,
    ),
    case(
        "100,000 nested brackets",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=NESTED_BRACKETS,
        headers=JSON,
    ),
    case(
        "100,000 nested objects in a free-form field",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=NESTED_OBJECTS,
        headers=JSON,
    ),
    case(
        "an empty body", "POST", "/api/v1/agents", 400, "INVALID_REQUEST", content=b"", headers=JSON
    ),
    case(
        "a wrong type",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": 5}',
        headers=JSON,
    ),
    case(
        "an unknown field",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "x", "colour": "red"}',
        headers=JSON,
    ),
    case(
        "a missing required field",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b"{}",
        headers=JSON,
    ),
    case(
        "an array instead of an object",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b"[]",
        headers=JSON,
    ),
    case(
        "a value out of range",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "x", "params": {"temperature": 5}}',
        headers=JSON,
    ),
    case(
        "a name with a slash",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "a/b"}',
        headers=JSON,
    ),
    case(
        "a name with a NUL",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "a\\u0000b"}',
        headers=JSON,
    ),
    case(
        "an unknown trigger type",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "x", "trigger": {"type": "sometimes"}}',
        headers=JSON,
    ),
    case(
        "a body over the size limit",
        "POST",
        "/api/v1/agents",
        413,
        "PAYLOAD_TOO_LARGE",
        content=b'{"name": "' + b"x" * 1_100_000 + b'"}',
        headers=JSON,
    ),
    case(
        "plain text",
        "POST",
        "/api/v1/agents",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=b"name",
        headers={"Content-Type": "text/plain"},
    ),
    case(
        "a form",
        "POST",
        "/api/v1/agents",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    case(
        "a non-UTF-8 charset",
        "POST",
        "/api/v1/agents",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=b'{"name": "x"}',
        headers={"Content-Type": "application/json; charset=latin-1"},
    ),
    case(
        "malformed TOML",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'name = "unterminated',
        headers=TOML,
    ),
    case(
        "deeply nested TOML",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b"name = " + b"[" * 100_000,
        headers=TOML,
    ),
    case(
        "TOML with a wrong type",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b"name = 5",
        headers=TOML,
    ),
    case(
        "an invalid namespace",
        "POST",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        content=b'{"name": "x"}',
        headers={**JSON, "X-Parley-Namespace": "Not Valid!"},
    ),
    case(
        "an invalid Idempotency-Key",
        "POST",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        content=b'{"name": "x"}',
        headers={**JSON, "Idempotency-Key": "k" * 300},
    ),
    case(
        "a patch with an unknown field",
        "PATCH",
        f"/api/v1/agents/{AGENT}",
        422,
        "VALIDATION_ERROR",
        content=b'{"nickname": "x"}',
        headers=JSON,
    ),
    case(
        "a patch with a wrong type",
        "PATCH",
        f"/api/v1/agents/{AGENT}",
        422,
        "VALIDATION_ERROR",
        content=b'{"labels": ["a"]}',
        headers=JSON,
    ),
    case(
        "a malformed If-Match",
        "PATCH",
        f"/api/v1/agents/{AGENT}",
        400,
        "INVALID_REQUEST",
        content=b'{"description": "x"}',
        headers={**JSON, "If-Match": "yesterday"},
    ),
    case(
        "an unknown action",
        "POST",
        f"/api/v1/agents/{AGENT}/actions",
        422,
        "VALIDATION_ERROR",
        content=b'{"action": "explode"}',
        headers=JSON,
    ),
    case(
        "an action body with a wrong type",
        "POST",
        f"/api/v1/agents/{AGENT}/start",
        422,
        "VALIDATION_ERROR",
        content=b'{"reason": 5}',
        headers=JSON,
    ),
    case(
        "an action body that is malformed",
        "POST",
        f"/api/v1/agents/{AGENT}/start",
        400,
        "INVALID_REQUEST",
        content=b'{"reason"',
        headers=JSON,
    ),
    case(
        "an unknown state filter",
        "GET",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        params={"state": "sleeping"},
    ),
    case(
        "an unknown trigger filter",
        "GET",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        params={"trigger": "sometimes"},
    ),
    case(
        "a label filter without a value",
        "GET",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        params={"label": "team"},
    ),
    case(
        "an unknown sort field",
        "GET",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        params={"sort": "colour:asc"},
    ),
    case("a limit of zero", "GET", "/api/v1/agents", 422, "VALIDATION_ERROR", params={"limit": 0}),
    case(
        "a limit over 200", "GET", "/api/v1/agents", 422, "VALIDATION_ERROR", params={"limit": 201}
    ),
    case(
        "a limit that is not a number",
        "GET",
        "/api/v1/agents",
        422,
        "VALIDATION_ERROR",
        params={"limit": "ten"},
    ),
    case(
        "a forged cursor",
        "GET",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        params={"cursor": "bm90LWEtY3Vyc29y"},
    ),
    case("an unknown route", "GET", "/api/v1/nothing-here", 404, "NOT_FOUND"),
    case("a wrong method", "PUT", "/api/v1/agents", 405, "METHOD_NOT_ALLOWED"),
    case(
        "a wrong method on an action",
        "GET",
        f"/api/v1/agents/{AGENT}/start",
        405,
        "METHOD_NOT_ALLOWED",
    ),
    case(
        "an agent id that cannot exist",
        "POST",
        "/api/v1/agents/bad%20id!/start",
        404,
        "AGENT_NOT_FOUND",
    ),
    case(
        "a Host that is not allowed",
        "GET",
        "/api/v1/agents",
        400,
        "INVALID_REQUEST",
        headers={"Host": "evil.example"},
    ),
]
# fmt: on


@pytest.fixture(scope="module")
async def victim(stack: Stack) -> AsyncIterator[tuple[str, str]]:
    """A namespace with one agent that the bad requests aim at."""
    namespace = f"bad-{uuid.uuid4().hex[:12]}"
    async with edge_client(stack, timeout=10) as http:
        created = await http.post(
            "/api/v1/agents", json={"name": "victim"}, headers={"X-Parley-Namespace": namespace}
        )
        assert created.status_code == 201, created.text
        yield namespace, created.json()["data"]["id"]


async def _last_position(stack: Stack) -> int:
    store = await open_store(nats_url=stack.nats_url)
    try:
        return await store.last_position()
    finally:
        await store.close()


async def _events_in(stack: Stack, namespace: str, after: int) -> list[str]:
    """Types of the events of ``namespace`` appended after position ``after``.

    Other tests' agents (periodic triggers, idle instances) may append meanwhile; only this
    namespace is the victim's.
    """
    store = await open_store(nats_url=stack.nats_url)
    try:
        last = await store.last_position()
        if last <= after:
            return []
        found = []
        subscription = store.subscribe(after)
        try:
            async for event in subscription:
                if event.namespace == namespace:
                    found.append(event.type)
                if event.position >= last:
                    break
        finally:
            await subscription.close()
        return found
    finally:
        await store.close()


def _assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", error["trace_id"])


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "params", "status", "code"), CASES
)
async def test_bad_input_gets_its_error_in_the_envelope_and_leaves_no_event(
    stack: Stack,
    victim: tuple[str, str],
    method: str,
    path: str,
    content: bytes | None,
    headers: dict[str, str],
    params: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    namespace, agent_id = victim
    before = await _last_position(stack)
    async with edge_client(stack, timeout=30) as http:
        response = await http.request(
            method,
            path.replace(AGENT, agent_id),
            content=content,
            headers={"X-Parley-Namespace": namespace, **headers},
            params=params,
        )
        _assert_envelope(response, status, code)
        if status == 422 and content:
            assert response.json()["error"]["details"], "validation errors name their fields"
        agent = (
            await http.get(f"/api/v1/agents/{agent_id}", headers={"X-Parley-Namespace": namespace})
        ).json()["data"]
    assert agent["version"] == 1 and agent["state"] == "created"
    assert await _events_in(stack, namespace, before) == []


async def test_validation_errors_name_the_field_path(stack: Stack) -> None:
    async with edge_client(stack, timeout=10) as http:
        response = await http.post(
            "/api/v1/agents", json={"name": "x", "params": {"temperature": "hot"}}
        )
    _assert_envelope(response, 422, "VALIDATION_ERROR")
    assert response.json()["error"]["details"][0]["field"] == "body.params.temperature"


async def test_a_chunked_body_over_the_limit_is_413_without_an_event(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}'

    before = await _last_position(stack)
    async with edge_client(stack, timeout=30) as http:
        response = await http.post("/api/v1/agents", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    _assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    registry_events = [
        t for t in await _events_in(stack, "default", before) if t.startswith("agent")
    ]
    assert registry_events == []


async def test_a_client_request_id_is_echoed_and_a_traceparent_gives_the_trace_id(
    stack: Stack,
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with edge_client(stack, timeout=10) as http:
        response = await http.get(
            "/api/v1/agents/missing",
            headers={"X-Request-Id": "req-123", "traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
        )
    assert response.headers["x-request-id"] == "req-123"
    assert response.json()["error"]["request_id"] == "req-123"
    assert response.json()["error"]["trace_id"] == trace
