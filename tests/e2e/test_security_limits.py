"""OWASP API4 (unrestricted resource consumption) and API8 (security misconfiguration).

Against the session's stack, plus edge processes this module starts on the same NATS with
their own settings: a "tuned" edge (short body timeouts, a CORS allow-list, an agents quota)
and two edges with a rate limit of 20/s that share their counters through NATS KV.

Limits count per principal: each rate-limit test gets a key of its own (and binds its own
loopback address, 127.0.0.x, which is what counts for a request without a principal).
"""

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests_support import auth_headers

from parley.devstack.nats import free_port
from parley.devstack.stack import Stack

BODY_TIMEOUT_S = 2.0
BODY_IDLE_S = 1.0
ALLOWED_ORIGIN = "https://app.example"
QUOTA = 2
RATE = 20
MODEL_RATE = 5

_next_address = iter(range(2, 250))


def _edge(stack: Stack, key: str, env: dict[str, str]) -> str:
    """Start one more edge process of ``stack`` with ``env``; its base URL once ready."""
    port = free_port()
    process = stack.start_process("edge", key=key, env={"PARLEY_EDGE_PORT": str(port), **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"edge {key} exited; see {stack.state_dir / 'logs'}"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"edge {key} not ready in time")


@pytest.fixture(scope="module")
def tuned(stack: Stack) -> Iterator[str]:
    """An edge with short body timeouts, one allowed CORS origin and an agents quota."""
    env = {
        "PARLEY_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "PARLEY_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_S),
        "PARLEY_CORS_ORIGINS": ALLOWED_ORIGIN,
        "PARLEY_QUOTA_MAX_AGENTS": str(QUOTA),
    }
    yield _edge(stack, "edge-tuned", env)
    stack.stop_process("edge-tuned")


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[tuple[str, str]]:
    """Two edge processes, each limiting every caller to 20 requests/s (5/s to models)."""
    env = {"PARLEY_RATE_LIMIT": f"{RATE}/1s", "PARLEY_MODEL_RATE_LIMIT": f"{MODEL_RATE}/1s"}
    yield _edge(stack, "edge-rl-a", env), _edge(stack, "edge-rl-b", env)
    for key in ("edge-rl-a", "edge-rl-b"):
        stack.stop_process(key)


@pytest.fixture(scope="module")
def key(stack: Stack) -> dict[str, str]:
    """The stack's admin key, as the header every edge of the stack accepts."""
    return auth_headers(stack)


@dataclass(frozen=True)
class Caller:
    """A fresh rate-limit caller: a key of its own (limits count per principal), from a
    loopback address no other test uses."""

    transport: httpx.AsyncHTTPTransport
    headers: dict[str, str]


@pytest.fixture
async def caller(client: httpx.AsyncClient) -> AsyncIterator[Caller]:
    made = await client.post(
        "/api/v1/keys",
        json={"name": f"caller-{uuid.uuid4().hex[:8]}", "roles": ["admin"], "namespaces": ["*"]},
    )
    assert made.status_code == 201, made.text
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{next(_next_address)}")
    yield Caller(transport, {"X-API-Key": made.json()["data"]["secret"]})
    await transport.aclose()


async def _burst(
    caller: Caller, urls: list[str], path: str, method: str = "GET"
) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        transport=caller.transport, timeout=20, headers=caller.headers
    ) as http:
        return list(await asyncio.gather(*(http.request(method, url + path) for url in urls)))


def _assert_exact_limit(responses: list[httpx.Response], limit: int) -> None:
    passed = [r for r in responses if r.status_code != 429]
    refused = [r for r in responses if r.status_code == 429]
    assert len(passed) == limit, [r.status_code for r in responses]
    assert len(refused) == len(responses) - limit
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == str(limit)
        assert int(response.headers["X-RateLimit-Reset"]) >= 1
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in passed) == list(range(limit))
    for response in refused:
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["Retry-After"] == response.headers["X-RateLimit-Reset"]
        assert response.json()["error"]["code"] == "RATE_LIMITED"


# --- unrestricted resource consumption: rate limits -------------------------------------


async def test_fifty_concurrent_requests_at_twenty_per_second_let_exactly_twenty_pass(
    limited: tuple[str, str], caller: Caller
) -> None:
    responses = await _burst(caller, [limited[0]] * 50, "/api/v1/agents")
    _assert_exact_limit(responses, RATE)
    assert all(r.status_code == 200 for r in responses if r.status_code != 429)


async def test_the_limit_holds_across_two_edge_processes(
    limited: tuple[str, str], caller: Caller
) -> None:
    responses = await _burst(caller, [limited[0], limited[1]] * 25, "/api/v1/agents")
    _assert_exact_limit(responses, RATE)
    by_edge = {url: [r for r in responses if str(r.url).startswith(url)] for url in limited}
    assert all(len(answers) == 25 for answers in by_edge.values())


async def test_a_window_ends_and_the_caller_may_go_on(
    limited: tuple[str, str], caller: Caller
) -> None:
    first = await _burst(caller, [limited[0]] * (RATE + 5), "/api/v1/agents")
    assert sum(r.status_code == 429 for r in first) == 5
    await asyncio.sleep(int(first[-1].headers["Retry-After"]) + 0.1)
    again = await _burst(caller, [limited[1]] * 3, "/api/v1/agents")
    assert [r.status_code for r in again] == [200, 200, 200]


async def test_model_calling_routes_have_their_own_lower_limit(
    limited: tuple[str, str], caller: Caller
) -> None:
    agent = f"/api/v1/agents/{uuid.uuid4().hex}"
    model = await _burst(caller, [limited[0], limited[1]] * 5, f"{agent}/chat", method="POST")
    _assert_exact_limit(model, MODEL_RATE)
    assert all(400 <= r.status_code < 500 for r in model)  # counted before any lookup
    reads = await _burst(caller, [limited[0]] * 5, "/api/v1/agents")
    assert [r.status_code for r in reads] == [200] * 5  # the general limit is separate
    assert reads[0].headers["X-RateLimit-Limit"] == str(RATE)


async def test_health_and_the_docs_are_not_limited(
    limited: tuple[str, str], caller: Caller
) -> None:
    for path in ("/health", "/ready", "/schema/openapi.json"):
        responses = await _burst(caller, [limited[0]] * (RATE + 10), path)
        assert {r.status_code for r in responses} == {200}, path
        assert "X-RateLimit-Limit" not in responses[0].headers


# --- unrestricted resource consumption: quotas, page and body caps -----------------------


async def test_an_agent_over_the_namespace_quota_is_refused_before_it_is_created(
    tuned: str, key: dict[str, str]
) -> None:
    namespace = f"quota-{uuid.uuid4().hex[:10]}"
    headers = {"X-Parley-Namespace": namespace, **key}
    async with httpx.AsyncClient(base_url=tuned, timeout=10, headers=headers) as http:
        made = [await http.post("/api/v1/agents", json={"name": f"q{i}"}) for i in range(QUOTA)]
        assert [r.status_code for r in made] == [201] * QUOTA, made[-1].text
        refused = await http.post("/api/v1/agents", json={"name": "one-too-many"})
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "QUOTA_EXCEEDED"
        assert error["details"] == {"quota": "agents", "limit": QUOTA, "namespace": namespace}
        listed = await http.get("/api/v1/agents")
        assert listed.json()["pagination"]["total_count"] == QUOTA  # nothing was created
        other = await http.post(
            "/api/v1/agents", json={"name": "elsewhere"}, headers={"X-Parley-Namespace": "q-o"}
        )
        assert other.status_code in (201, 403)  # another namespace has a quota of its own
        gone = await http.delete(f"/api/v1/agents/{made[0].json()['data']['id']}")
        assert gone.status_code in (200, 204), gone.text
        room = await http.post("/api/v1/agents", json={"name": "room-again"})
        assert room.status_code == 201, room.text


def _cluster(name: str, replicas: int, namespace: str | None = None) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    template = {"replicas": replicas, "spec": {"name": "worker"}}
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": metadata,
        "spec": {"template": template},
    }


async def test_a_cluster_that_would_exceed_the_agents_quota_is_refused(
    tuned: str, key: dict[str, str]
) -> None:
    namespace = f"quota-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=tuned, timeout=10, headers=key) as http:
        # the manifest names the namespace; the request does not
        refused = await http.post(
            "/api/v1/clusters", json=_cluster("big", QUOTA + 1, namespace), params={"start": False}
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
        listed = await http.get("/api/v1/clusters", headers={"X-Parley-Namespace": namespace})
        assert listed.json()["data"] == []
        fits = await http.post(
            "/api/v1/clusters",
            json=_cluster("fits", QUOTA),
            params={"start": False},
            headers={"X-Parley-Namespace": namespace},
        )
        assert fits.status_code == 201, fits.text
        more = await http.post(
            "/api/v1/agents", json={"name": "extra"}, headers={"X-Parley-Namespace": namespace}
        )
        assert more.status_code == 403, more.text


LISTS = [
    "/api/v1/agents",
    "/api/v1/personas",
    "/api/v1/clusters",
    "/api/v1/sessions",
    "/api/v1/messages",
    "/api/v1/tasks",
    "/api/v1/models",
    "/api/v1/tools",
    "/api/v1/strategies",
]


@pytest.mark.parametrize("path", LISTS)
async def test_a_page_larger_than_the_cap_is_refused(client: httpx.AsyncClient, path: str) -> None:
    too_big = await client.get(path, params={"limit": 201})
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["error"]["code"] == "VALIDATION_ERROR"
    capped = await client.get(path, params={"limit": 200})
    assert capped.status_code == 200, capped.text
    assert capped.json()["pagination"]["limit"] == 200


async def test_a_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/agents",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def _head(port: int, padding: int) -> bytes:
    """A GET of ``/health`` whose head carries a header of ``padding`` bytes."""
    return (
        f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {'p' * padding}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(("padding", "status"), [(15_000, b"200"), (17_000, b"400")])
def test_a_request_head_over_16_kib_is_refused(stack: Stack, padding: int, status: bytes) -> None:
    port = int(stack.edge_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(port, padding))
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    if status == b"400":
        _assert_envelope(answer, "over 16384 bytes")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/agents?q=" + b"%F2%B3%AD%94" * 5_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["url-over-the-cap", "garbage"],
)
def test_a_request_that_cannot_be_parsed_gets_the_error_envelope(
    stack: Stack, request_bytes: bytes
) -> None:
    port = int(stack.edge_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    _assert_envelope(answer, "")


def _assert_envelope(answer: bytes, says: str) -> None:
    """``answer`` is a JSON ``INVALID_REQUEST`` envelope whose message has ``says``."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert says in error["message"]
    assert error["request_id"].encode() in head


def test_a_header_that_never_ends_is_cut_off(stack: Stack) -> None:
    port = int(stack.edge_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: ".encode())
        sent = 0
        with contextlib.suppress(OSError):  # the server may close while we still send
            while sent < 1024 * 1024:
                sock.sendall(b"p" * 1024)  # one read each, never the end of the header
                sent += 1024
                time.sleep(0.001)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert sent < 1024 * 1024  # refused long before a megabyte


def _half_send(
    port: int, key: dict[str, str], path: str = "/api/v1/agents", namespace: str = ""
) -> socket.socket:
    """A connection that announces a 1000-byte body and sends 10 bytes of it."""
    namespace = namespace or f"slow-{uuid.uuid4().hex[:10]}"  # room under the agents quota
    sock = socket.create_connection(("127.0.0.1", port), timeout=BODY_TIMEOUT_S + 10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Parley-Namespace: {namespace}\r\n"
        f"X-API-Key: {key['X-API-Key']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"name": "'
    )
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


async def _trickled(sock: socket.socket, times: int, every: float) -> bytes:
    """The server's whole answer on ``sock`` after one more body byte every ``every`` seconds,
    ``times`` times or until the server stops reading; the socket is closed after."""
    try:
        for _ in range(times):
            await asyncio.sleep(every)
            try:
                sock.sendall(b"x")
            except OSError:
                break
        return await asyncio.to_thread(_answer, sock)
    finally:
        sock.close()


async def test_half_sent_bodies_time_out_while_normal_requests_go_on(
    tuned: str, key: dict[str, str]
) -> None:
    port = int(tuned.rsplit(":", 1)[1])
    started = time.monotonic()
    sockets = [_half_send(port, key) for _ in range(20)]
    try:
        async with httpx.AsyncClient(base_url=tuned, timeout=10, headers=key) as http:
            assert (await http.get("/api/v1/agents")).status_code == 200
        answers = await asyncio.gather(*(asyncio.to_thread(_answer, s) for s in sockets))
    finally:
        for sock in sockets:
            sock.close()
    elapsed = time.monotonic() - started
    assert elapsed < BODY_TIMEOUT_S + 3, elapsed
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b'"code":"REQUEST_TIMEOUT"' in answer


async def test_a_trickled_body_times_out_in_total(tuned: str, key: dict[str, str]) -> None:
    port = int(tuned.rsplit(":", 1)[1])
    sock = _half_send(port, key)
    started = time.monotonic()
    times = int(BODY_TIMEOUT_S / (BODY_IDLE_S / 2)) + 4
    answer = await _trickled(sock, times, BODY_IDLE_S / 2)  # never idle too long
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < BODY_TIMEOUT_S + BODY_IDLE_S * 4


async def test_a_body_refused_unread_cannot_be_trickled_for_ever(
    tuned: str, key: dict[str, str]
) -> None:
    port = int(tuned.rsplit(":", 1)[1])
    namespace = f"full-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=tuned, timeout=10, headers=key) as http:
        for i in range(QUOTA):
            made = await http.post(
                "/api/v1/agents", json={"name": f"f{i}"}, headers={"X-Parley-Namespace": namespace}
            )
            assert made.status_code == 201, made.text
    sock = _half_send(port, key, namespace=namespace)  # refused by the quota before it is read
    started = time.monotonic()
    answer = await _trickled(sock, 12, 0.5)  # a byte every half second would hold a keep-alive
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5


# --- security misconfiguration -------------------------------------------------------------


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/api/v1/agents",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert not any(h.lower().startswith("access-control-") for h in preflight.headers)
    plain = await client.get("/api/v1/agents", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers


async def test_cors_opens_only_to_the_listed_origins(tuned: str, key: dict[str, str]) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    async with httpx.AsyncClient(base_url=tuned, timeout=10, headers=key) as http:
        allowed = await http.options("/api/v1/agents", headers={"Origin": ALLOWED_ORIGIN, **ask})
        assert allowed.headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
        assert "x-api-key" in allowed.headers.get("Access-Control-Allow-Headers", "").lower()
        evil = await http.options(
            "/api/v1/agents", headers={"Origin": "http://evil.example", **ask}
        )
        assert "Access-Control-Allow-Origin" not in evil.headers
        read = await http.get("/api/v1/agents", headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in read.headers


@pytest.mark.parametrize(
    "host", ["evil.example", "127.0.0.1:9999", "localhost:1", "[::1]:2", "127.0.0.1", ""]
)
async def test_a_foreign_host_or_port_is_refused(
    stack: Stack, host: str, key: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10, headers=key) as http:
        response = await http.get("/api/v1/agents", headers={"Host": host})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
async def test_the_loopback_names_with_the_edges_port_are_served(
    stack: Stack, name: str, key: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10, headers=key) as http:
        response = await http.get("/api/v1/agents", headers={"Host": f"{name}:{stack.edge_port}"})
    assert response.status_code == 200, response.text


def _assert_secured(response: httpx.Response, *, docs: bool = False) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff", response.url
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    if docs:
        assert "script-src" in csp and "https://cdn.jsdelivr.net" in csp
    else:
        assert csp.startswith("default-src 'none'")
        assert "no-store" in headers["Cache-Control"] or response.url.path == "/api/v1/events"


async def test_security_headers_are_on_every_response(client: httpx.AsyncClient) -> None:
    answers: list[tuple[httpx.Response, bool]] = [
        (await client.get("/api/v1/agents"), False),
        (await client.get("/health"), False),
        (await client.get("/api/v1/agents/nope"), False),  # 404 from a handler
        (await client.get("/api/v1/nowhere"), False),  # 404 from the router
        (await client.put("/api/v1/agents"), False),  # 405
        (await client.post("/api/v1/agents", content=b"{", headers=_JSON), False),  # 400
        (await client.get("/api/v1/agents", params={"limit": 0}), False),  # 422
        (await client.get("/api/v1/agents", headers={"Host": "evil.example"}), False),
        (await client.get("/schema/openapi.json"), False),
        (await client.get("/schema"), True),
        (await client.get("/schema/swagger"), True),
    ]
    for response, docs in answers:
        _assert_secured(response, docs=docs)
    async with client.stream("GET", "/api/v1/events", params={"type": "none.*"}) as stream:
        assert stream.status_code == 200
        _assert_secured(stream, docs=False)


_JSON = {"Content-Type": "application/json"}


async def test_debug_is_off_and_errors_carry_no_traceback(client: httpx.AsyncClient) -> None:
    bad: list[httpx.Response] = [
        await client.post("/api/v1/agents", content=b"{not json", headers=_JSON),
        await client.post("/api/v1/agents", content=b'{"name": 5}', headers=_JSON),
        await client.get("/api/v1/agents", params={"limit": "many"}),
        await client.get("/api/v1/nowhere"),
        await client.post("/api/v1/events", content=b"\xff\xfe", headers=_JSON),
    ]
    for response in bad:
        assert 400 <= response.status_code < 500, response.text
        text = response.text
        assert "Traceback" not in text and 'File "' not in text and ".py" not in text, text
        body: dict[str, Any] = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) <= {"code", "message", "details", "request_id", "trace_id"}
        assert response.headers["content-type"].startswith("application/json")
