"""The edge's hardening and limits, piece by piece: rates, hosts, headers, body timeouts, and
the shared rate-limit windows against the session's real nats-server."""

import asyncio
import uuid
from typing import Any

import pytest
from nats.aio.client import Client

from parley.contracts.errors import HTTP_STATUS
from parley.contracts.errors import ErrorCode
from parley.edge.http.bodytimeout import DRAIN_MAX
from parley.edge.http.bodytimeout import BodyTimeout
from parley.edge.http.errors import ApiError
from parley.edge.http.limits import MODEL_ROUTES
from parley.edge.http.limits import UNLIMITED
from parley.edge.http.limits import caller
from parley.edge.http.ratelimit import AHEAD_MIN_LIMIT
from parley.edge.http.ratelimit import Rate
from parley.edge.http.ratelimit import Verdict
from parley.edge.http.ratelimit import WindowCounter
from parley.edge.http.security import API_CSP
from parley.edge.http.security import DOCS_CSP
from parley.edge.http.security import HostPolicy
from parley.edge.http.security import add_security_headers
from parley.edge.http.security import cors_config
from parley.edge.http.security import split_host
from parley.edge.settings import EdgeSettings
from parley.edge.settings import load_settings


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/1s", Rate(100, 1.0)),
        ("20/s", Rate(20, 1.0)),
        ("600/1m", Rate(600, 60.0)),
        ("5 / 2h", Rate(5, 7200.0)),
        ("10/500ms", Rate(10, 0.5)),
        ("off", None),
        ("", None),
    ],
)
def test_a_rate_reads_as_count_per_period(text: str, rate: Rate | None) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["100", "x/1s", "10/1d", "-1/1s", "10/0s"])
def test_a_malformed_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rate"):
        Rate.parse(text)


def test_a_refusal_says_when_to_retry_in_whole_seconds() -> None:
    passed = Verdict(allowed=True, limit=20, remaining=3, reset=0.2)
    assert passed.headers() == {
        "X-RateLimit-Limit": "20",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "1",
    }
    refused = Verdict(allowed=False, limit=20, remaining=0, reset=41.5).headers()
    assert refused["Retry-After"] == refused["X-RateLimit-Reset"] == "42"


def test_the_new_error_codes_have_their_statuses() -> None:
    assert HTTP_STATUS[ErrorCode.QUOTA_EXCEEDED] == 403
    assert HTTP_STATUS[ErrorCode.REQUEST_TIMEOUT] == 408
    assert HTTP_STATUS[ErrorCode.RATE_LIMITED] == 429


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agents/a1/chat",
        "/api/v1/agents/a1/chat/stream",
        "/api/v1/sessions/s1/chat",
        "/api/v1/sessions/s1/chat/stream",
        "/api/v1/agents/a1/webhook",
        "/api/v1/agents/a1/actions",
        "/api/v1/agents/a1/executions/e1/input",
        "/api/v1/messages",
        "/api/v1/tasks/t1/distribute",
        "/api/v1/clusters/c1/runs",
    ],
)
def test_the_model_calling_routes_are_recognised(path: str) -> None:
    assert MODEL_ROUTES.match(path)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/agents", "/api/v1/agents/a1", "/api/v1/tasks", "/api/v1/agents/a1/chatter"],
)
def test_other_routes_are_not_model_routes(path: str) -> None:
    assert not MODEL_ROUTES.match(path)


def test_health_and_docs_are_unlimited() -> None:
    assert {"/health", "/ready", "/schema"} <= set(UNLIMITED)


class _User:
    id = "key-1"


def test_a_caller_is_its_principal_else_its_address() -> None:
    by_principal = caller({"user": _User(), "client": ("10.0.0.1", 5)})  # type: ignore[typeddict-unknown-key]
    assert by_principal == caller({"user": _User(), "client": ("10.0.0.2", 6)})  # type: ignore[typeddict-unknown-key]
    by_address = caller({"client": ("10.0.0.1", 5)})  # type: ignore[typeddict-item]
    assert by_address != by_principal
    assert by_address == caller({"client": ("10.0.0.1", 7)})  # type: ignore[typeddict-item]
    assert by_address.isalnum() and len(by_address) == 40  # a valid KV key token


@pytest.mark.parametrize(
    ("value", "split"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", "8080")),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8080", ("[::1]", "8080")),
        ("[::1]", ("[::1]", None)),
        ("::1", ("[::1]", None)),
        ("api.example.com.", ("api.example.com", None)),
    ],
)
def test_a_host_splits_into_name_and_port(value: str, split: tuple[str, str | None]) -> None:
    assert split_host(value) == split


def test_the_default_hosts_are_loopback_with_the_edges_port() -> None:
    policy = HostPolicy(EdgeSettings(port=8080).hosts())
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST:8080"):
        assert policy.allows(host), host
    for host in ("127.0.0.1:9999", "127.0.0.1", "localhost", "evil.example", "[::1]", "", None):
        assert not policy.allows(host), host


def test_allowed_hosts_match_ports_wildcards_and_any_port() -> None:
    policy = HostPolicy(["api.example.com", "*.example.org:8443", "intern:*"])
    assert policy.allows("api.example.com")
    assert not policy.allows("api.example.com:8080")
    assert policy.allows("a.example.org:8443")
    assert not policy.allows("a.example.org")
    assert not policy.allows("example.org:8443")
    assert policy.allows("intern:1") and policy.allows("intern")
    assert HostPolicy(["*"]).allows("anything:1")


def test_hosts_and_origins_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "PARLEY_ALLOWED_HOSTS": "api.example.com:443, localhost:9000",
            "PARLEY_CORS_ORIGINS": "https://a.example",
            "PARLEY_RATE_LIMIT": "20/1s",
            "PARLEY_BODY_TIMEOUT_S": "3",
            "PARLEY_QUOTA_MAX_AGENTS": "7",
        }
    )
    assert settings.hosts() == ["api.example.com:443", "localhost:9000"]
    assert settings.rate_limit == "20/1s"
    assert settings.body_timeout_s == 3.0 and settings.quota_max_agents == 7
    cors = cors_config(settings.cors_origins)
    assert cors is not None and cors.allow_origins == ["https://a.example"]
    assert not cors.allow_credentials
    assert cors_config([]) is None  # closed


async def _headers_of(path: str, *present: tuple[bytes, bytes]) -> dict[bytes, bytes]:
    message: Any = {"type": "http.response.start", "status": 200, "headers": list(present)}
    await add_security_headers(message, {"type": "http", "path": path})  # type: ignore[typeddict-item]
    return dict(message["headers"])


async def test_api_responses_get_the_strict_headers() -> None:
    headers = await _headers_of("/api/v1/agents")
    assert headers[b"content-security-policy"] == API_CSP.encode()
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"cross-origin-opener-policy"] == b"same-origin"
    assert (await _headers_of("/schema/openapi.json"))[
        b"content-security-policy"
    ] == API_CSP.encode()


async def test_the_docs_pages_may_load_their_scripts_and_handlers_keep_their_own() -> None:
    assert (await _headers_of("/schema"))[b"content-security-policy"] == DOCS_CSP.encode()
    assert (await _headers_of("/schema/swagger"))[b"content-security-policy"] == DOCS_CSP.encode()
    kept = await _headers_of("/api/v1/events", (b"cache-control", b"no-cache"))
    assert kept[b"cache-control"] == b"no-cache"


def _receiver(*chunks: tuple[float, bytes, bool]) -> Any:
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        if not queue:
            await asyncio.sleep(3600)
        delay, body, more = queue.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": body, "more_body": more}

    return receive


async def _read_body(guard: BodyTimeout, receive: Any) -> bytes:
    body = b""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal body
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return

    async def send(message: Any) -> None:
        return None

    scope: Any = {"type": "http", "headers": [(b"transfer-encoding", b"chunked")]}
    await guard.handle(scope, receive, send, app)
    return body


async def test_a_body_that_arrives_in_time_is_read_whole() -> None:
    body = await _read_body(
        BodyTimeout(1.0, 0.2), _receiver((0.05, b"a", True), (0.05, b"b", False))
    )
    assert body == b"ab"


async def test_a_body_that_pauses_too_long_is_408() -> None:
    with pytest.raises(ApiError) as refused:
        await _read_body(BodyTimeout(5.0, 0.1), _receiver((0.0, b"a", True)))
    assert refused.value.code is ErrorCode.REQUEST_TIMEOUT
    assert refused.value.headers == {"Connection": "close"}


async def test_a_body_that_trickles_past_the_total_is_408() -> None:
    trickle = [(0.05, b"x", True)] * 20
    with pytest.raises(ApiError) as refused:
        await _read_body(BodyTimeout(0.3, 0.1), _receiver(*trickle))
    assert refused.value.code is ErrorCode.REQUEST_TIMEOUT


async def _counters(connections: list[Client]) -> list[WindowCounter]:
    bucket = f"rate-{uuid.uuid4().hex[:8]}"
    counters = [WindowCounter(nc.jetstream(), ttl=60, bucket=bucket) for nc in connections]
    for counter in counters:
        await counter.start()
    return counters


async def test_two_processes_share_one_window_exactly(connections: list[Client]) -> None:
    counters = await _counters(connections)
    rate = Rate(20, 5.0)
    verdicts = await asyncio.gather(*(counters[i % 2].hit("k", rate) for i in range(50)))
    allowed = [v for v in verdicts if v.allowed]
    assert len(allowed) == 20
    assert sorted(v.remaining for v in allowed) == list(range(20))
    assert all(v.remaining == 0 and 0 < v.reset <= 5 for v in verdicts if not v.allowed)
    other = await counters[1].hit("other", rate)
    assert other.allowed and other.remaining == 19


async def test_one_process_counts_a_burst_in_arrival_order(connections: list[Client]) -> None:
    counters = await _counters(connections)
    rate = Rate(20, 5.0)
    verdicts = await asyncio.gather(*(counters[0].hit("k", rate) for _ in range(30)))
    assert [v.allowed for v in verdicts] == [True] * 20 + [False] * 10
    assert [v.remaining for v in verdicts] == [*range(19, -1, -1)] + [0] * 10
    again = await counters[1].hit("k", rate)  # the other process sees the full window
    assert not again.allowed and again.remaining == 0


async def test_a_cancelled_request_is_not_counted_while_it_waits(
    connections: list[Client],
) -> None:
    counters = await _counters(connections)
    rate = Rate(3, 5.0)
    first = asyncio.ensure_future(counters[0].hit("k", rate))
    waiting = [asyncio.ensure_future(counters[0].hit("k", rate)) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # still queued behind the first request's compare-and-set
    assert (await first).remaining == 2
    assert [(await w).remaining for w in waiting[1:]] == [1, 0]


async def test_a_new_window_begins_when_the_last_one_ends(connections: list[Client]) -> None:
    counters = await _counters(connections)
    rate = Rate(2, 0.3)
    first = [await counters[0].hit("k", rate) for _ in range(3)]
    assert [v.allowed for v in first] == [True, True, False]
    await asyncio.sleep(0.35)
    again = await counters[1].hit("k", rate)
    assert again.allowed and again.remaining == 1
    assert not (await counters[0].hit("k", Rate(1, 0.3))).allowed  # its cache is refreshed


async def _writes(counter: WindowCounter, key: str) -> int:
    """How many times the window entry of ``key`` was written (its KV revision)."""
    entry = await counter._bucket().get(key)
    return entry.revision or 0


async def test_a_steady_caller_is_counted_ahead_without_a_write_per_request(
    connections: list[Client],
) -> None:
    counters = await _counters(connections)
    rate = Rate(1000, 60.0)
    verdicts = [await counters[0].hit("k", rate) for _ in range(100)]
    assert all(v.allowed for v in verdicts)
    assert [v.remaining for v in verdicts] == list(range(999, 899, -1))
    assert await _writes(counters[0], "k") <= 10  # one per claim, not one per request
    other = await counters[1].hit("k", rate)  # the other process counts after the claims
    assert other.allowed and other.remaining < 900


async def test_counting_ahead_never_lets_more_than_the_limit_pass(
    connections: list[Client],
) -> None:
    counters = await _counters(connections)
    rate = Rate(AHEAD_MIN_LIMIT, 60.0)
    one_by_one = [await counters[i % 2].hit("a", rate) for i in range(3 * AHEAD_MIN_LIMIT)]
    burst = await asyncio.gather(*(counters[i % 2].hit("b", rate) for i in range(300)))
    for verdicts in (one_by_one, burst):
        allowed = [v.remaining for v in verdicts if v.allowed]
        assert len(allowed) == len(set(allowed)) <= AHEAD_MIN_LIMIT
        assert len(allowed) >= AHEAD_MIN_LIMIT - 2 * (AHEAD_MIN_LIMIT // 16)  # leases left


async def test_small_limits_are_never_counted_ahead(connections: list[Client]) -> None:
    counters = await _counters(connections)
    rate = Rate(AHEAD_MIN_LIMIT - 1, 60.0)
    for n in range(1, 6):
        assert (await counters[0].hit("k", rate)).allowed
        assert await _writes(counters[0], "k") == n


async def _answer_headers(
    scope_headers: list[tuple[bytes, bytes]], read: bool, *chunks: tuple[float, bytes, bool]
) -> list[Any]:
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if read:
            await receive()
        await send({"type": "http.response.start", "status": 403, "headers": []})

    async def send(message: Any) -> None:
        sent.append(message)

    scope: Any = {"type": "http", "headers": scope_headers}
    await BodyTimeout(1.0, 0.2).handle(scope, _receiver(*chunks), send, app)
    return list(sent[0]["headers"])


CLOSE = (b"connection", b"close")
WHOLE = (0.0, b"{}", False)


async def test_an_unread_body_that_arrives_is_dropped_and_the_connection_kept() -> None:
    assert CLOSE not in await _answer_headers([(b"content-length", b"2")], False, WHOLE)
    assert CLOSE not in await _answer_headers([(b"content-length", b"2")], True, WHOLE)
    assert CLOSE not in await _answer_headers([(b"content-length", b"0")], False)
    assert CLOSE not in await _answer_headers([], False)
    chunked = [(b"transfer-encoding", b"chunked")]
    assert CLOSE not in await _answer_headers(chunked, False, (0.0, b"a", True), WHOLE)


async def test_an_unread_body_that_stalls_or_is_huge_closes_the_connection() -> None:
    stalls = (0.0, b"a", True)
    assert CLOSE in await _answer_headers([(b"content-length", b"1000")], False, stalls)
    trickle = [(0.1, b"x", True)] * 30
    assert CLOSE in await _answer_headers([(b"transfer-encoding", b"chunked")], False, *trickle)
    huge = [(b"content-length", str(DRAIN_MAX + 1).encode())]
    assert CLOSE in await _answer_headers(huge, False, WHOLE)
