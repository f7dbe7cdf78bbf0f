"""OWASP API4: a chat WebSocket counts each message against the model rate limit.

An edge process of the session's stack with a model limit of 3 per 30 s; the test's caller is
a key of its own (the limit is per principal), so no other test's requests share its window.
"""

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests_support import edge_client
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect

from parley.devstack.nats import free_port
from parley.devstack.stack import Stack

MODEL_RATE = 3


@pytest.fixture(scope="module")
def limited_edge(stack: Stack) -> Iterator[str]:
    """One more edge of the stack, allowing 3 model calls per caller and 30 s."""
    port = free_port()
    env = {"PARLEY_EDGE_PORT": str(port), "PARLEY_MODEL_RATE_LIMIT": f"{MODEL_RATE}/30s"}
    process = stack.start_process("edge", key="edge-ws-limited", env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"edge exited; see {stack.state_dir / 'logs'}"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "edge not ready in time"
        time.sleep(0.1)
    yield url
    stack.stop_process("edge-ws-limited")


async def _frames_until(ws: ClientConnection, *kinds: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(await ws.recv())
        frames.append(frame)
        if frame["type"] in kinds:
            return frames


async def test_each_socket_message_counts_against_the_model_rate_limit(
    stack: Stack, limited_edge: str
) -> None:
    namespace = f"wsrl-{uuid.uuid4().hex[:8]}"
    headers = {"X-Parley-Namespace": namespace}
    async with edge_client(stack, timeout=10, headers=headers) as admin:
        made = await admin.post(
            "/api/v1/keys",
            json={"name": "ws caller", "roles": ["operator"], "namespaces": [namespace]},
        )
        assert made.status_code == 201, made.text
        secret = made.json()["data"]["secret"]
        created = await admin.post("/api/v1/agents", json={"name": f"ws-{uuid.uuid4().hex[:6]}"})
        assert created.status_code == 201, created.text
        agent_id = created.json()["data"]["id"]
        assert (await admin.post(f"/api/v1/agents/{agent_id}/start")).status_code == 200

    url = limited_edge.replace("http://", "ws://", 1) + f"/api/v1/agents/{agent_id}/ws"
    socket_headers = {"X-API-Key": secret, **headers}
    async with connect(url, additional_headers=socket_headers) as ws:
        for n in range(MODEL_RATE):  # within the limit: each message is a turn
            await ws.send(json.dumps({"type": "message", "message": f"m{n}"}))
            frames = await _frames_until(ws, "end", "error")
            assert frames[-1]["type"] == "end", frames
        await ws.send(json.dumps({"type": "message", "message": "one too many"}))
        [refused] = await _frames_until(ws, "error")
        assert refused["data"]["code"] == "RATE_LIMITED"
        assert "seq" not in refused  # no turn started
        assert refused["data"]["details"]["limit"] == MODEL_RATE
        assert 1 <= refused["data"]["details"]["retry_after_s"] <= 30
        await ws.send(json.dumps({"type": "ping", "id": "p"}))  # the socket stays open
        assert json.loads(await ws.recv()) == {"type": "pong", "id": "p"}

    async with httpx.AsyncClient(base_url=limited_edge, headers=socket_headers) as http:
        chat = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "x"})
        assert chat.status_code == 429, chat.text  # the same window as the HTTP routes
