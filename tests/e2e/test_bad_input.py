"""Bad input through the real edge: every case gets its status and code in the error
envelope, never a 500, and none of them leaves an event behind."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from e2e_support import error_of
from e2e_support import events_in
from e2e_support import last_position
from tests_support import edge_client

from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

NESTED_BRACKETS = b"[" * 100_000
NESTED_OBJECTS = b'{"name": "deep", "tools": [{"name": "t", "config": ' + b'{"a": ' * 100_000
JSON = {"Content-Type": "application/json"}
TOML = {"Content-Type": "application/toml"}
X = b'{"name": "x"}'
NOT_AN_ETAG = {**JSON, "If-Match": "yesterday"}
AGENT = "{agent}"  # replaced by the id of an agent created before the table runs
BAD = (400, "INVALID_REQUEST")
INVALID = (422, "VALIDATION_ERROR")
TOO_LARGE = (413, "PAYLOAD_TOO_LARGE")
MEDIA = (415, "UNSUPPORTED_MEDIA_TYPE")


def case(
    id: str,
    method: str,
    path: str,
    outcome: tuple[int, str],
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One bad request and the (status, code) it gets."""
    status, code = outcome
    return pytest.param(method, path, content, headers or {}, params, status, code, id=id)


NEW_AGENT_JSON = [  # POST /api/v1/agents, a JSON content type: (id, body, outcome)
    ("malformed JSON", b'{"name": ', BAD),
    ("JSON with trailing garbage", b'{"name": "x"} trailing', BAD),
    ("invalid UTF-8 in a string", b'{"name": "\xff\xfe"}', BAD),
    ("invalid UTF-8 outside strings", b"\xff\xfe\xfd", BAD),
    ("a lone surrogate escape", b'{"name": "\\ud800"}', BAD),
    ("100,000 nested brackets", NESTED_BRACKETS, BAD),
    ("100,000 nested objects in a free-form field", NESTED_OBJECTS, BAD),
    ("an empty body", b"", BAD),
    ("a wrong type", b'{"name": 5}', INVALID),
    ("an unknown field", b'{"name": "x", "colour": "red"}', INVALID),
    ("a missing required field", b"{}", INVALID),
    ("an array instead of an object", b"[]", INVALID),
    ("a value out of range", b'{"name": "x", "params": {"temperature": 5}}', INVALID),
    ("a name with a slash", b'{"name": "a/b"}', INVALID),
    ("a name with a NUL", b'{"name": "a\\u0000b"}', INVALID),
    ("an unknown trigger type", b'{"name": "x", "trigger": {"type": "sometimes"}}', INVALID),
    ("a body over the size limit", b'{"name": "' + b"x" * 1_100_000 + b'"}', TOO_LARGE),
]
NEW_AGENT_HEADERS = [  # POST /api/v1/agents: (id, body, headers, outcome)
    ("plain text", b"name", {"Content-Type": "text/plain"}, MEDIA),
    ("a form", b"name=x", {"Content-Type": "application/x-www-form-urlencoded"}, MEDIA),
    ("a non-UTF-8 charset", X, {"Content-Type": "application/json; charset=latin-1"}, MEDIA),
    ("malformed TOML", b'name = "unterminated', TOML, BAD),
    ("deeply nested TOML", b"name = " + b"[" * 100_000, TOML, BAD),
    ("TOML with a wrong type", b"name = 5", TOML, INVALID),
    ("an invalid namespace", X, {**JSON, "X-Parley-Namespace": "Not Valid!"}, INVALID),
    ("an invalid Idempotency-Key", X, {**JSON, "Idempotency-Key": "k" * 300}, BAD),
]
TO_THE_AGENT = [  # to the victim agent: (id, method, path after its URL, body, headers, outcome)
    ("a patch with an unknown field", "PATCH", "", b'{"nickname": "x"}', JSON, INVALID),
    ("a patch with a wrong type", "PATCH", "", b'{"labels": ["a"]}', JSON, INVALID),
    ("a malformed If-Match", "PATCH", "", b'{"description": "x"}', NOT_AN_ETAG, BAD),
    ("an unknown action", "POST", "/actions", b'{"action": "explode"}', JSON, INVALID),
    ("an action body with a wrong type", "POST", "/start", b'{"reason": 5}', JSON, INVALID),
    ("an action body that is malformed", "POST", "/start", b'{"reason"', JSON, BAD),
]
LIST_PARAMS = [  # GET /api/v1/agents: (id, query, outcome)
    ("an unknown state filter", {"state": "sleeping"}, INVALID),
    ("an unknown trigger filter", {"trigger": "sometimes"}, INVALID),
    ("a label filter without a value", {"label": "team"}, INVALID),
    ("an unknown sort field", {"sort": "colour:asc"}, INVALID),
    ("a limit of zero", {"limit": 0}, INVALID),
    ("a limit over 200", {"limit": 201}, INVALID),
    ("a limit that is not a number", {"limit": "ten"}, INVALID),
    ("a forged cursor", {"cursor": "bm90LWEtY3Vyc29y"}, BAD),
]
CASES = [
    *(
        case(id, "POST", "/api/v1/agents", outcome, content=body, headers=JSON)
        for id, body, outcome in NEW_AGENT_JSON
    ),
    *(
        case(id, "POST", "/api/v1/agents", outcome, content=body, headers=headers)
        for id, body, headers, outcome in NEW_AGENT_HEADERS
    ),
    *(
        case(id, method, f"/api/v1/agents/{AGENT}{tail}", outcome, content=body, headers=headers)
        for id, method, tail, body, headers, outcome in TO_THE_AGENT
    ),
    *(
        case(id, "GET", "/api/v1/agents", outcome, params=params)
        for id, params, outcome in LIST_PARAMS
    ),
    case("an unknown route", "GET", "/api/v1/nothing-here", (404, "NOT_FOUND")),
    case("a wrong method", "PUT", "/api/v1/agents", (405, "METHOD_NOT_ALLOWED")),
    case(
        "a wrong method on an action",
        "GET",
        f"/api/v1/agents/{AGENT}/start",
        (405, "METHOD_NOT_ALLOWED"),
    ),
    case(
        "an agent id that cannot exist",
        "POST",
        "/api/v1/agents/bad%20id!/start",
        (404, "AGENT_NOT_FOUND"),
    ),
    case(
        "a Host that is not allowed", "GET", "/api/v1/agents", BAD, headers={"Host": "evil.example"}
    ),
]


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


async def _events_in(stack: Stack, namespace: str, after: int) -> list[str]:
    store = await open_store(nats_url=stack.nats_url)
    try:
        return await events_in(store, namespace, after)
    finally:
        await store.close()


def _assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    error = error_of(response, status, code)
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
    before = await last_position(stack)
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
    assert response.json()["error"]["details"]["errors"][0]["field"] == "body.params.temperature"


async def test_a_chunked_body_over_the_limit_is_413_without_an_event(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}'

    before = await last_position(stack)
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
