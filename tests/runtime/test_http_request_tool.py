"""`http_request` against a real HTTP server on 127.0.0.1: allowlists, redirects, caps, timeouts."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from loopback import Loopback

from parley.runtime.tools import ToolContext
from parley.runtime.tools import ToolError
from parley.runtime.tools import ToolOutcome
from parley.runtime.tools import run_tool

CTX = ToolContext("default", "agent-1", None, None)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "host": request.headers.get("Host"),
            "body": await request.text(),
            "authorization": request.headers.get("Authorization"),
        }
    )


async def _redirect(request: web.Request) -> web.Response:
    status = int(request.query.get("status", "302"))
    return web.Response(status=status, headers={"Location": request.query["to"]})


async def _loop(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/loop"})


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * 10_000, content_type="text/plain")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


@pytest.fixture(scope="module")
async def port() -> AsyncIterator[int]:
    """A real aiohttp server on 127.0.0.1 (only), on a free port."""
    app = web.Application()
    app.router.add_route("*", "/ok", _ok)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/big", _big)
    app.router.add_get("/slow", _slow)
    server = await Loopback(app).start()
    yield server.port
    await server.stop()


async def fetch(arguments: dict[str, Any], **config: Any) -> ToolOutcome:
    return await run_tool("http_request", arguments, config, CTX)


async def refusal(arguments: dict[str, Any], code: str = "refused", **config: Any) -> ToolError:
    """The error the tool raises for ``arguments`` under ``config``, asserted to be ``code``."""
    with pytest.raises(ToolError) as info:
        await fetch(arguments, **config)
    assert info.value.code == code, info.value
    return info.value


async def test_an_allowlisted_loopback_host_is_reached(port: int) -> None:
    outcome = await fetch({"url": f"http://127.0.0.1:{port}/ok"}, allowed_hosts=["127.0.0.1"])
    assert outcome.data["status"] == 200
    assert outcome.data["body"] == "hello"
    assert outcome.data["truncated"] is False
    assert outcome.data["duration_ms"] >= 0
    assert '"status":200' in outcome.content


async def test_a_loopback_host_that_is_not_allowlisted_is_refused(port: int) -> None:
    for url in (f"http://127.0.0.1:{port}/ok", f"http://localhost:{port}/ok"):
        error = await refusal({"url": url})
        assert "not a public address" in error.message
    await refusal({"url": f"http://127.0.0.1:{port}/ok"}, allowed_hosts=["example.com"])


async def test_the_connection_is_pinned_to_the_checked_address_and_keeps_the_host_name(
    port: int,
) -> None:
    outcome = await fetch({"url": f"http://localhost:{port}/echo"}, allowed_hosts=["localhost"])
    assert outcome.data["status"] == 200
    assert f'"host": "localhost:{port}"' in outcome.data["body"]


async def test_a_redirect_to_a_host_outside_the_allowlist_is_refused_unless_allowed(
    port: int,
) -> None:
    url = f"http://localhost:{port}/redirect?to=http://127.0.0.1:{port}/ok"
    error = await refusal({"url": url}, allowed_hosts=["localhost"])
    assert "127.0.0.1" in error.message
    outcome = await fetch({"url": url}, allowed_hosts=["localhost", "127.0.0.1"])
    assert outcome.data["body"] == "hello"
    assert outcome.data["redirects"] == 1
    assert outcome.data["url"] == f"http://127.0.0.1:{port}/ok"


async def test_a_redirect_to_a_metadata_address_is_refused_without_an_allowlist(
    port: int,
) -> None:
    # The first hop is allowlisted; the open policy of the second hop still refuses it.
    url = f"http://127.0.0.1:{port}/redirect?to=http://169.254.169.254/latest/meta-data/"
    await refusal({"url": url}, allowed_hosts=["127.0.0.1"])


async def test_at_most_three_redirects_are_followed(port: int) -> None:
    error = await refusal({"url": f"http://127.0.0.1:{port}/loop"}, allowed_hosts=["127.0.0.1"])
    assert "redirects" in error.message


async def test_credentials_are_dropped_when_a_redirect_changes_host(port: int) -> None:
    url = f"http://localhost:{port}/redirect?to=http://127.0.0.1:{port}/echo&status=307"
    outcome = await fetch(
        {"url": url, "headers": {"Authorization": "Bearer secret"}},
        allowed_hosts=["localhost", "127.0.0.1"],
    )
    assert '"authorization": null' in outcome.data["body"]


async def test_a_303_after_post_is_followed_with_get(port: int) -> None:
    url = f"http://127.0.0.1:{port}/redirect?to=/echo&status=303"
    outcome = await fetch(
        {"url": url, "method": "POST", "body": "payload"},
        allowed_hosts=["127.0.0.1"],
        allowed_methods=["GET", "POST"],
    )
    assert '"method": "GET"' in outcome.data["body"]


async def test_a_long_body_is_truncated_at_the_cap(port: int) -> None:
    outcome = await fetch(
        {"url": f"http://127.0.0.1:{port}/big"}, allowed_hosts=["127.0.0.1"], max_response_bytes=100
    )
    assert outcome.data["truncated"] is True
    assert outcome.data["body"] == "x" * 100


async def test_a_slow_server_times_out(port: int) -> None:
    url = f"http://127.0.0.1:{port}/slow"
    await refusal({"url": url}, "timeout", allowed_hosts=["127.0.0.1"], timeout_seconds=0.3)


async def test_a_method_outside_allowed_methods_is_refused(port: int) -> None:
    url = f"http://127.0.0.1:{port}/echo"
    error = await refusal({"url": url, "method": "POST", "body": "x"}, allowed_hosts=["127.0.0.1"])
    assert "POST" in error.message
    outcome = await fetch(
        {"url": url, "method": "POST", "body": "x"},
        allowed_hosts=["127.0.0.1"],
        allowed_methods=["POST"],
    )
    assert '"body": "x"' in outcome.data["body"]


@pytest.mark.parametrize("header", ["Host", "Content-Length", "Transfer-Encoding"])
async def test_headers_the_tool_controls_cannot_be_set(port: int, header: str) -> None:
    arguments = {"url": f"http://127.0.0.1:{port}/ok", "headers": {header: "evil.example"}}
    await refusal(arguments, "invalid_arguments", allowed_hosts=["127.0.0.1"])


async def test_a_closed_port_fails_cleanly(port: int) -> None:
    await refusal({"url": "http://127.0.0.1:9/"}, "failed", allowed_hosts=["127.0.0.1"])
