"""A loopback server that speaks Anthropic's and OpenAI's streaming wire, with scripted faults.

Each request pops the next scenario from the script of its API (``anthropic`` or ``openai``);
when the script is empty it answers ``text``. Scenarios: ``text``, ``tools``, ``429``, ``500``,
``529``, ``midstream_error``, ``hang`` (headers, then silence), ``stall`` (some text, then
silence), and two that send the caller's credential back, as a careless gateway would:
``401_echo`` (a 401 whose error body quotes the request's ``Authorization``/``x-api-key``
header and the bare key) and ``echo_text`` (an answer that spells the key out, split
across two text deltas).

``POST /v1/embeddings`` answers every input with a deterministic vector (its words hashed
into :data:`EMBEDDING_DIMENSIONS` buckets), as floats or base64 as the client asks; its
requests are recorded under the api name ``embeddings``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import struct
from collections import deque
from typing import Any

from aiohttp import web
from loopback import Loopback

TEXT = ["Hello", " there,", " world"]
CALLS = [
    ("toolu_1", "calculator", ['{"expres', 'sion": "2', '+3"}']),
    ("toolu_2", "weather", ['{"city":', ' "Paris"}']),
]


EMBEDDING_DIMENSIONS = 64


def embedding(text: str) -> list[float]:
    """The wire's vector of ``text``: each lowercase word adds 1 to its hashed bucket."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vector[int.from_bytes(digest) % EMBEDDING_DIMENSIONS] += 1.0
    return vector


class WireServer(Loopback):
    """Fake provider endpoints on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[str]] = {"anthropic": deque(), "openai": deque()}
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.retry_after = "0.2"
        self.calls: list[tuple[str, str, list[str]]] = list(CALLS)
        """Tool calls the ``tools`` scenario streams: (id, name, argument JSON pieces)."""
        self.leak = ""
        """What ``GET /leak`` answers (a page that shows a secret, for a tool to fetch)."""
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/leak", self._leak)
        super().__init__(app)

    async def stop(self) -> None:
        """Let hung handlers go and close the server."""
        self._release.set()
        await super().stop()

    def runtime_env(self, key: str) -> dict[str, str]:
        """A runtime's environment pointing its Anthropic and OpenAI adapters here, with
        ``key`` as both providers' key."""
        return {
            "PARLEY_ANTHROPIC_BASE_URL": self.url,
            "PARLEY_OPENAI_BASE_URL": f"{self.url}/v1",
            "ANTHROPIC_API_KEY": key,
            "OPENAI_API_KEY": key,
        }

    def script(self, api: str, *scenarios: str) -> None:
        """Queue the scenarios the next requests to ``api`` get, in order."""
        self.scripts[api].clear()
        self.scripts[api].extend(scenarios)

    def count(self, api: str) -> int:
        """Requests received by ``api`` so far."""
        return sum(1 for name, _, _ in self.requests if name == api)

    async def _next(self, api: str, request: web.Request) -> str:
        self.requests.append((api, await request.json(), dict(request.headers)))
        return self.scripts[api].popleft() if self.scripts[api] else "text"

    def _credential(self) -> tuple[str, str]:
        """The last request's credential header (``name: value``) and the bare key."""
        headers = {name.lower(): value for name, value in self.requests[-1][2].items()}
        if "x-api-key" in headers:
            return f"x-api-key: {headers['x-api-key']}", headers["x-api-key"]
        authorization = headers.get("authorization", "")
        return f"Authorization: {authorization}", authorization.removeprefix("Bearer ")

    def _failure(self, scenario: str, anthropic: bool) -> web.Response | None:
        if scenario == "401_echo":
            header, key = self._credential()
            message = f"invalid credentials {key} (you sent {header})"
            kind = "authentication_error"
            body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
            if not anthropic:
                body = {"error": {"type": "invalid_request_error", "message": message}}
            return web.json_response(body, status=401)
        status = {"429": 429, "500": 500, "529": 529}.get(scenario)
        if status is None:
            return None
        kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
        body = {"type": "error", "error": {"type": kind, "message": f"scripted {status}"}}
        if not anthropic:
            body = {"error": {"type": kind, "message": f"scripted {status}", "code": None}}
        headers = {"retry-after": self.retry_after} if status == 429 else {}
        return web.json_response(body, status=status, headers=headers)

    async def _open(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        return response

    def _pieces(self, scenario: str) -> list[str]:
        """The answer's text deltas for ``scenario``."""
        if scenario == "echo_text":
            key = self._credential()[1]
            return ["Your key is ", key[:9], key[9:], ", keep it safe."]
        return TEXT[:2] if scenario in ("midstream_error", "stall") else TEXT

    async def _leak(self, request: web.Request) -> web.Response:
        return web.Response(text=self.leak)

    async def _hang(self) -> None:
        await self._release.wait()

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        scenario = await self._next("anthropic", request)
        if (failure := self._failure(scenario, anthropic=True)) is not None:
            return failure
        response = await self._open(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            data = {"type": event, **data}
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        if scenario == "hang":
            await self._hang()
            return response
        message = {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 1},
        }  # fmt: skip
        await send("message_start", {"message": message})
        if scenario == "tools":
            for index, (call_id, name, parts) in enumerate(self.calls):
                block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
                await send("content_block_start", {"index": index, "content_block": block})
                for part in parts:
                    delta = {"type": "input_json_delta", "partial_json": part}
                    await send("content_block_delta", {"index": index, "delta": delta})
                await send("content_block_stop", {"index": index})
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            await send("content_block_start", {"index": 0, "content_block": block})
            for piece in self._pieces(scenario):
                delta = {"type": "text_delta", "text": piece}
                await send("content_block_delta", {"index": 0, "delta": delta})
            if scenario == "stall":
                await self._hang()
                return response
            if scenario == "midstream_error":
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await send("error", {"error": error})
                return response
            await send("content_block_stop", {"index": 0})
            stop = "end_turn"
        delta = {"stop_reason": stop, "stop_sequence": None}
        await send("message_delta", {"delta": delta, "usage": {"output_tokens": 7}})
        await send("message_stop", {})
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("embeddings", body, dict(request.headers)))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding(text)
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{len(vector)}f", *vector)
                vector = base64.b64encode(packed).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        answer = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        return web.json_response(answer)

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        scenario = await self._next("openai", request)
        if (failure := self._failure(scenario, anthropic=False)) is not None:
            return failure
        response = await self._open(request)

        async def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any):
            choices = [] if delta is None else [
                {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            ]  # fmt: skip
            data = {
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-test", "choices": choices, **extra,
            }  # fmt: skip
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        if scenario == "hang":
            await self._hang()
            return response
        await chunk({"role": "assistant", "content": ""})
        if scenario == "tools":
            for index, (call_id, name, parts) in enumerate(self.calls):
                for n, part in enumerate(parts):
                    call: dict[str, Any] = {"index": index, "function": {"arguments": part}}
                    if n == 0:
                        call.update(id=call_id, type="function")
                        call["function"]["name"] = name
                    await chunk({"tool_calls": [call]})
            await chunk({}, "tool_calls")
        else:
            for piece in self._pieces(scenario):
                await chunk({"content": piece})
            if scenario == "stall":
                await self._hang()
                return response
            if scenario == "midstream_error":
                error = {"error": {"message": "Overloaded", "type": "server_error"}}
                await response.write(f"data: {json.dumps(error)}\n\n".encode())
                return response
            await chunk({}, "stop")
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        await chunk(None, usage=usage)
        await response.write(b"data: [DONE]\n\n")
        return response
