"""The stack recovers by itself when nats-server dies and comes back.

nats-server is killed (SIGKILL) under a small steady load of chat turns, FIPA request→inform
round trips and webhook executions, then started again on the same port and store dir. Its
memory-backed streams and buckets (``PARLEY_DELTAS``, ``KV_parley-slots``,
``KV_parley-leases``, the edge's tickets and rate counters) are gone; no service is
restarted. Within 10 s everything works again, ``/ready`` says 503 while NATS is away and 200
after, and every request that was acknowledged with a 2xx is answered or recorded.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
from e2e_support import new_agent
from e2e_support import started
from tests_support import edge_client
from tests_support import eventually
from wire_server import WireServer

from parley.contracts import subjects
from parley.devstack.stack import SERVICES
from parley.devstack.stack import Stack
from parley.kit.deltas import DELTA_STREAM

KEY = "sk-test-restart-0123456789"
RECOVERY_S = 10.0
"""How soon after nats-server is back chat, executions and ACL round trips must work."""


@pytest.fixture(scope="module")
async def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The module's own stack, its model the conftest's loopback ``wire``."""
    env = {"PARLEY_ANTHROPIC_BASE_URL": wire.url, "ANTHROPIC_API_KEY": KEY}
    async with started(Stack(tmp_path_factory.mktemp("nats-restart"), env=env)) as running:
        yield running


async def running_agent(http: httpx.AsyncClient, **spec: Any) -> str:
    return await new_agent(http, "nr", **spec)


@dataclass
class Agents:
    chat: str
    acl: str
    executor: str


@dataclass
class Load:
    """What the steady load sent, and which requests the stack acknowledged."""

    chats: list[int] = field(default_factory=list)
    acl: list[tuple[int, str, bool]] = field(default_factory=list)
    """(status, conversation id, answered in the response) of each send-and-wait."""
    executions: list[str] = field(default_factory=list)
    """Execution ids acknowledged with 202."""
    errors: int = 0


async def chat(http: httpx.AsyncClient, agents: Agents) -> bool:
    response = await http.post(f"/api/v1/agents/{agents.chat}/chat", json={"message": "hi"})
    return response.status_code == 200 and response.json()["data"]["outcome"] == "completed"


async def acl_round_trip(http: httpx.AsyncClient, agents: Agents, load: Load | None = None) -> bool:
    response = await http.post(
        "/api/v1/messages",
        json={
            "performative": "request",
            "receivers": [agents.acl],
            "content": "ping",
            "protocol": "fipa-request",
            "wait": 5,
        },
    )
    if response.status_code // 100 != 2:
        return False
    data = response.json()["data"]
    answered = (data.get("reply") or {}).get("performative") == "inform"
    if load is not None:
        load.acl.append((response.status_code, data["conversation_id"], answered))
    return answered


async def execution(http: httpx.AsyncClient, agents: Agents, load: Load | None = None) -> bool:
    response = await http.post(
        f"/api/v1/agents/{agents.executor}/webhook", json={"input_data": {"message": "go"}}
    )
    if response.status_code != 202:
        return False
    execution_id = response.json()["data"]["execution_id"]
    if load is not None:
        load.executions.append(execution_id)
        return True
    return await completed(http, agents.executor, execution_id, within=RECOVERY_S)


async def completed(
    http: httpx.AsyncClient, agent_id: str, execution_id: str, within: float
) -> bool:
    async def done() -> bool:
        view = await http.get(f"/api/v1/agents/{agent_id}/executions/{execution_id}")
        return view.status_code == 200 and view.json()["data"]["status"] == "completed"

    await eventually(done, within=within, every=0.1)
    return True


async def steady(http: httpx.AsyncClient, agents: Agents, load: Load, stop: asyncio.Event) -> None:
    """One chat turn, one ACL round trip and one webhook after another until ``stop``."""

    async def loop(step: Callable[[], Awaitable[Any]]) -> None:
        while not stop.is_set():
            try:
                await step()
            except httpx.HTTPError:
                load.errors += 1
            await asyncio.sleep(0.1)

    async def one_chat() -> None:
        response = await http.post(f"/api/v1/agents/{agents.chat}/chat", json={"message": "x"})
        load.chats.append(response.status_code)
        if response.status_code == 200:
            assert response.json()["data"]["response"], response.text

    await asyncio.gather(
        loop(one_chat),
        loop(lambda: acl_round_trip(http, agents, load)),
        loop(lambda: execution(http, agents, load)),
    )


async def ready_status(stack: Stack) -> int:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=2) as plain:
        try:
            return (await plain.get("/ready")).status_code
        except httpx.HTTPError:
            return 0


async def first_success(probe: Callable[[], Awaitable[bool]], since: float) -> float:
    """Seconds from ``since`` to the first success of ``probe`` (tried until RECOVERY_S)."""
    while True:
        try:
            if await probe():
                return time.monotonic() - since
        except httpx.HTTPError:
            pass
        if time.monotonic() - since > RECOVERY_S:
            raise AssertionError(f"{probe} did not succeed within {RECOVERY_S}s of the restart")
        await asyncio.sleep(0.1)


async def services_healthy(stack: Stack) -> dict[str, dict[str, Any]]:
    """Each service's health answer."""
    nc = await nats.connect(stack.nats_url)
    try:
        answers = {}
        for name in SERVICES:
            reply = await nc.request(subjects.health(name), b"", timeout=2)
            answers[name] = json.loads(reply.data)
        return answers
    finally:
        await nc.close()


@pytest.mark.timeout(240)
async def test_the_stack_recovers_by_itself_when_nats_server_is_killed_and_started_again(
    stack: Stack, wire: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pids = {name: process.pid for name, process in stack.processes.items()}
    async with edge_client(stack, timeout=20) as http:
        agents = Agents(
            chat=await running_agent(http, provider="anthropic", model="claude-haiku-4-5"),
            acl=await running_agent(http),
            executor=await running_agent(http),
        )
        assert await chat(http, agents)
        assert await acl_round_trip(http, agents)
        assert await execution(http, agents)
        assert await ready_status(stack) == 200

        load, stop = Load(), asyncio.Event()
        background = asyncio.create_task(steady(http, agents, load, stop))
        try:
            await asyncio.sleep(1.0)  # some load before the crash
            assert stack.nats.process is not None
            stack.nats.process.kill()  # SIGKILL: no goodbye, memory state lost
            stack.nats.process.wait()
            await eventually(lambda: _is(ready_status(stack), 503), within=10)
            await asyncio.sleep(1.0)  # some load while NATS is away

            await asyncio.to_thread(stack.nats.start)  # same port, same store dir
            back = time.monotonic()
            recovery = await asyncio.gather(
                first_success(lambda: chat(http, agents), back),
                first_success(lambda: acl_round_trip(http, agents), back),
                first_success(lambda: execution(http, agents), back),
                first_success(lambda: _is(ready_status(stack), 200), back),
                first_success(lambda: created(http), back),
            )
            await asyncio.sleep(2.0)  # more load after the recovery
        finally:
            stop.set()
            await background

        with capsys.disabled():
            chat_s, acl_s, execution_s, ready_s, create_s = recovery
            print(
                f"\nrecovery after nats-server restart: chat {chat_s:.2f}s, ACL {acl_s:.2f}s,"
                f" execution {execution_s:.2f}s, /ready {ready_s:.2f}s,"
                f" agent create (read your writes) {create_s:.2f}s"
            )
        # No service was restarted: the same processes, all alive.
        assert not stack.dead()
        assert {name: p.pid for name, p in stack.processes.items()} == pids
        health = await services_healthy(stack)
        assert {name: h["status"] for name, h in health.items()} == dict.fromkeys(SERVICES, "ok")

        # Every acknowledged request was answered or is recorded as done.
        assert 200 in load.chats
        for _, conversation_id, answered in load.acl:
            if not answered:  # acknowledged, not answered in time: the answer must come
                await eventually(lambda c=conversation_id: _informed(http, c), within=60, every=0.2)
        for execution_id in load.executions:
            assert await completed(http, agents.executor, execution_id, within=60)


async def created(http: httpx.AsyncClient) -> bool:
    """An agent is created and the edge shows it (its projection follows the store again)."""
    response = await http.post("/api/v1/agents", json={"name": f"nr-{uuid.uuid4().hex[:8]}"})
    return response.status_code == 201


async def _is(status: Awaitable[int], wanted: int) -> bool:
    return await status == wanted


async def _informed(http: httpx.AsyncClient, conversation_id: str) -> bool:
    page = await http.get(
        "/api/v1/messages", params={"conversation_id": conversation_id, "performative": "inform"}
    )
    return page.status_code == 200 and bool(page.json()["data"])


@pytest.mark.timeout(60)
async def test_a_bucket_deleted_by_hand_is_made_again_and_chat_works(stack: Stack) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        await js.delete_key_value(subjects.SLOTS_BUCKET)
        await js.delete_stream(DELTA_STREAM)

        async def back() -> bool:
            try:
                await js.stream_info(f"KV_{subjects.SLOTS_BUCKET}")
                await js.stream_info(DELTA_STREAM)
            except nats.js.errors.NotFoundError:
                return False
            return True

        await eventually(back, within=10, every=0.1)
    finally:
        await nc.close()
    async with edge_client(stack, timeout=20) as http:
        agent_id = await running_agent(http, provider="anthropic", model="claude-haiku-4-5")
        agents = Agents(chat=agent_id, acl=agent_id, executor=agent_id)
        assert await chat(http, agents)
    health = await services_healthy(stack)
    assert health["runtime"]["status"] == "ok" and health["runtime"]["missing"] == []
