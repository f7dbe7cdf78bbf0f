"""`http_request`: HTTP to allowed hosts, safe against server-side request forgery.

Each hop (the first request and up to :data:`MAX_REDIRECTS` redirects, followed by hand) is
checked by :func:`~parley.runtime.tools._addresses.checked_addresses`, and the connection is
*pinned* to a checked address: the request goes to ``scheme://<ip>:port`` with the original
``Host`` header and, for https, the original name as TLS SNI and certificate hostname. A DNS
answer that changes between the check and the connection (rebinding) therefore has no effect.
Proxies from the environment are ignored for the same reason.

The body is read as a stream and cut at ``max_response_bytes``; a longer body is *truncated*
(``truncated: true``), not an error, so the model still sees its beginning. The server is
asked for ``Accept-Encoding: identity`` so the cap counts the bytes actually held.
"""

import asyncio
import time
from typing import Any

import httpx
import msgspec

from parley.contracts.tools import HttpRequestArgs
from parley.contracts.tools import HttpRequestConfig
from parley.runtime.tools._addresses import Target
from parley.runtime.tools._addresses import checked_addresses
from parley.runtime.tools._addresses import parse_target
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin
from parley.runtime.tools.read_file import is_text_type

__all__ = ["MAX_REDIRECTS", "http_request"]

MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RESPONSE_HEADERS = ("content-type", "content-length", "location", "last-modified", "etag",
                     "retry-after", "date")  # fmt: skip
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                                "upgrade", "te", "trailer", "keep-alive", "proxy-authorization",
                                "proxy-connection"})  # fmt: skip
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


def _request_headers(given: dict[str, str]) -> dict[str, str]:
    headers = {"User-Agent": "parley-http-request/1.0"}
    for name, value in given.items():
        if name.lower() in _FORBIDDEN_HEADERS:
            raise ToolError("invalid_arguments", f"header {name!r} is set by the tool, not you")
        if any(c in name + value for c in "\r\n\0") or not name:
            raise ToolError("invalid_arguments", f"header {name!r} has an invalid name or value")
        if name.lower() != "accept-encoding":
            headers[name] = value
    headers["Accept-Encoding"] = "identity"
    return headers


def _pinned(target: Target, ip: Any) -> httpx.URL:
    return target.url.copy_with(host=str(ip))


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        if size + len(chunk) > cap:
            chunks.append(chunk[: cap - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _text(response: httpx.Response, raw: bytes) -> str:
    content_type = response.headers.get("content-type", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", ""):
        return f"<{len(raw)} bytes with Content-Encoding {encoding}, not shown>"
    if content_type and not is_text_type(content_type):
        return f"<{len(raw)} bytes of {content_type}, not shown>"
    try:
        return raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


@builtin("http_request", HttpRequestArgs, HttpRequestConfig)
async def http_request(
    arguments: HttpRequestArgs, config: HttpRequestConfig, ctx: ToolContext
) -> ToolOutcome:
    """Send the request, following checked redirects; the outcome holds the response."""
    if arguments.method not in config.allowed_methods:
        raise ToolError(
            "refused",
            f"method {arguments.method} is not allowed; allowed: "
            + ", ".join(config.allowed_methods),
        )
    headers = _request_headers(arguments.headers)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(config.timeout_seconds):
            async with httpx.AsyncClient(
                trust_env=False, follow_redirects=False, timeout=config.timeout_seconds
            ) as client:
                data = await _follow(client, arguments, config, headers)
    except (TimeoutError, httpx.TimeoutException):
        raise ToolError(
            "timeout", f"no complete response within {config.timeout_seconds:g}s"
        ) from None
    data["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return ToolOutcome(content=msgspec.json.encode(data).decode(), data=data)


async def _follow(
    client: httpx.AsyncClient,
    arguments: HttpRequestArgs,
    config: HttpRequestConfig,
    headers: dict[str, str],
) -> dict[str, Any]:
    target = parse_target(arguments.url)
    method, body = arguments.method, arguments.body
    for hop in range(MAX_REDIRECTS + 1):
        response, raw, truncated = await _send(client, target, method, headers, body, config)
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location:
            if hop == MAX_REDIRECTS:
                raise ToolError("refused", f"more than {MAX_REDIRECTS} redirects")
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
            if method in config.allowed_methods:
                following = parse_target(target.url.join(location))
                if following.host != target.host:
                    headers = {
                        k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS
                    }
                target = following
                continue
        return {
            "url": str(target.url),
            "status": response.status_code,
            "headers": {h: response.headers[h] for h in _RESPONSE_HEADERS if h in response.headers},
            "body": _text(response, raw),
            "truncated": truncated,
            "redirects": hop,
        }
    raise AssertionError("unreachable")


async def _send(
    client: httpx.AsyncClient,
    target: Target,
    method: str,
    headers: dict[str, str],
    body: str | None,
    config: HttpRequestConfig,
) -> tuple[httpx.Response, bytes, bool]:
    addresses = await checked_addresses(target, config.allowed_hosts)
    host_header = target.url.netloc.decode("ascii")
    extensions = {}
    if target.url.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host
    problem: Exception | None = None
    for ip in addresses:  # in resolver order; the next one only if connecting failed
        request = client.build_request(
            method,
            _pinned(target, ip),
            headers={**headers, "Host": host_header},
            content=body.encode() if body is not None else None,
            extensions=extensions,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            problem = exc
            continue
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ToolError("failed", f"{type(exc).__name__}: {exc}") from None
        try:
            raw, truncated = await _read_capped(response, config.max_response_bytes)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ToolError("failed", f"reading the response: {exc}") from None
        finally:
            await response.aclose()
        return response, raw, truncated
    raise ToolError("failed", f"cannot connect to {target.host}: {problem}")
