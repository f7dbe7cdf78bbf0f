"""Agents doing work through the whole stack: chat turns, time to first token, executions.

- Chat turns per second on the offline provider, one session, then 64 sessions at once.
- Time to first token through the stack (edge → runtime → provider → delta → SSE) minus the
  time to first token calling the same local provider directly: the platform's overhead. The
  provider is a local OpenAI-compatible streaming server, so both paths pay the same HTTP.
- Webhook executions per second through the durable JetStream work queue.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bench._stats import Timer
from bench._stats import one_at_a_time
from bench._stats import percentile
from bench._stats import post
from bench._stats import report
from bench._stats import side_by_side
from parley.llm import ChatRequest
from parley.llm import Message
from parley.llm import Provider
from parley.llm import ProviderSettings
from parley.llm import TextDelta
from parley.llm import provider_for

__all__ = ["LocalProvider", "chat_turns", "executions", "first_token"]


class LocalProvider:
    """A minimal OpenAI-compatible streaming endpoint on loopback (answers at once)."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, handle_signals=False)
        self.url = ""

    async def start(self) -> "LocalProvider":
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "local"}
        for piece in ("Hello", " from", " local"):
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
        await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        return response


async def _agent(http: aiohttp.ClientSession, **spec: object) -> str:
    body = {"name": f"bench-{uuid.uuid4().hex[:8]}", **spec}
    agent_id = (await post(http, "/api/v1/agents", body))["data"]["id"]
    await post(http, f"/api/v1/agents/{agent_id}/start")
    return agent_id


async def chat_turns(edge_url: str, turns: int = 2_000, sessions: int = 64) -> None:
    """Sync chat turns on the offline provider: one session, then many at once."""
    connector = aiohttp.TCPConnector(limit=sessions)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        agent_id = await _agent(http, instances=sessions)
        path = f"/api/v1/agents/{agent_id}/chat"
        first = await post(http, path, {"message": "warm up"})
        conversation = first["data"]["conversation_id"]

        async def turn(conversation_id: str, i: int) -> None:
            await post(http, path, {"message": f"turn {i}", "conversation_id": conversation_id})

        latencies, seconds = await one_at_a_time(lambda i: turn(conversation, i), turns // 8)
        report("chat turn (offline provider), 1 session", turns // 8, seconds, latencies)

        conversations = [
            (await post(http, path, {"message": "hello"}))["data"]["conversation_id"]
            for _ in range(sessions)
        ]
        latencies, seconds = await side_by_side(turn, conversations, max(1, turns // sessions))
        report(
            f"chat turns (offline provider), {sessions} sessions at once",
            len(latencies),
            seconds,
            latencies,
        )


async def _sse_first_token(http: aiohttp.ClientSession, path: str, body: dict) -> tuple[float, str]:
    """Seconds to the first `token` event of a streamed turn, and its conversation id."""
    start = time.perf_counter()
    conversation = ""
    async with http.post(path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status} {await response.text()}")
        first = None
        async for line in _lines(response.content):
            if first is None and line == "event: token":
                first = time.perf_counter() - start
            if not conversation and line.startswith("data: "):
                conversation = json.loads(line[6:]).get("conversation_id", "")
            if line in ("event: end", "event: error"):
                break
    if first is None:
        raise RuntimeError("the stream ended without a token")
    return first, conversation


async def _stream_ttft(http: aiohttp.ClientSession, agent_id: str, samples: int) -> list[float]:
    """First-token times of ``samples`` streamed turns, each opening a conversation, so the
    provider gets the same one-message request as the direct call (after a warm-up)."""
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    await _sse_first_token(http, path, {"message": "hello"})
    return [(await _sse_first_token(http, path, {"message": "hello"}))[0] for _ in range(samples)]


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    async for raw in content:
        yield raw.decode().rstrip("\r\n")


async def first_token(edge_url: str, provider_url: str, samples: int = 300) -> None:
    """Time to first token through the stack minus calling the same provider directly."""
    direct = provider_for("openai_compatible", ProviderSettings(base_url=provider_url, api_key="x"))
    request = ChatRequest(model="local", messages=(Message("user", "hello"),))
    try:
        direct_ttft = await _direct_first_tokens(direct, request, samples)
    finally:
        await direct.aclose()
    async with aiohttp.ClientSession(edge_url) as http:
        agent_id = await _agent(http, provider="openai_compatible", model="local")
        stack_ttft = await _stream_ttft(http, agent_id, samples)
        offline_ttft = await _stream_ttft(http, await _agent(http), samples)
    offline = ChatRequest(model="offline-1", messages=(Message("user", "hello"),))
    offline_direct = await _direct_first_tokens(provider_for("offline"), offline, samples)
    _overhead("local OpenAI-compatible server", direct_ttft, stack_ttft)
    _overhead("offline provider", offline_direct, offline_ttft)


async def _direct_first_tokens(
    provider: Provider, request: ChatRequest, samples: int
) -> list[float]:
    """Seconds to the first text delta of ``samples`` calls of ``provider`` itself."""
    found = []
    for _ in range(samples):
        start = time.perf_counter()
        async for delta in provider.stream(request):
            if isinstance(delta, TextDelta):
                found.append(time.perf_counter() - start)
                break
    return found


def _overhead(name: str, direct: list[float], stack: list[float]) -> None:
    for path, values in (("direct", direct), ("through the stack", stack)):
        p50, p99 = percentile(values, 50) * 1e3, percentile(values, 99) * 1e3
        print(
            f"time to first token, {name}, {path:<18} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms",
            flush=True,
        )
    print(
        f"platform overhead on time to first token, {name}: p50"
        f" {(percentile(stack, 50) - percentile(direct, 50)) * 1e3:.2f} ms, p99"
        f" {(percentile(stack, 99) - percentile(direct, 99)) * 1e3:.2f} ms",
        flush=True,
    )


async def executions(edge_url: str, count: int = 1_000) -> None:
    """Webhook executions through the durable work queue, until all have completed."""
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(edge_url, connector=connector) as http:
        agent_id = await _agent(http, instances=64)
        path = f"/api/v1/agents/{agent_id}/webhook"
        queue = list(range(count))

        async def fire() -> None:
            while queue:
                i = queue.pop()
                await post(http, path, {"input_data": {"message": f"job {i}"}})

        with Timer() as t:
            await asyncio.gather(*(fire() for _ in range(32)))
            while True:
                async with http.get(
                    f"/api/v1/agents/{agent_id}/executions", params={"status": "completed"}
                ) as response:
                    done = (await response.json())["pagination"]["total_count"]
                if done >= count:
                    break
                await asyncio.sleep(0.05)
        report("webhook executions through the durable queue (offline)", count, t.seconds)
