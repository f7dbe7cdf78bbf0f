"""SIGTERM is a graceful stop: nothing acknowledged is lost, nothing is done twice.

A process told to stop refuses readiness first, takes no new work, finishes what it holds
within its grace period (5 s) or hands it back (nak: another process takes it at once, not
after ``ack_wait``), and exits 0. Two runtimes share the queues here, so one can stop while
the other carries on. A local HTTP server stands in for the world the ``http_request`` tool
reaches: it counts hits per path and holds ``slow…`` paths until the test lets them go.
"""

import asyncio
import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from aiohttp import web
from e2e_support import started
from tests_support import eventually
from tests_support import stream_events

from parley.contracts import subjects
from parley.contracts.acl import conversation_stream
from parley.devstack.nats import free_port
from parley.devstack.stack import Stack

ENV = {"PARLEY_WORKER": "runtime-a", "PARLEY_ACK_WAIT": "60", "PARLEY_QUOTA_MAX_AGENTS": "0"}
"""A minute's ``ack_wait``: work handed back must come back by nak, not by the timeout; no
agent quota: the load below creates agents for as long as a service takes to stop."""
RUNTIMES = {"runtime-a": "runtime", "runtime-b": "runtime-b"}
"""Worker name → the stack's process key."""


class World:
    """Answers every path, counting hits; ``slow…`` paths wait for :meth:`release`."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.held: dict[str, asyncio.Event] = {}
        self.released: dict[str, asyncio.Event] = {}
        app = web.Application()
        app.router.add_get("/{name}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        self.port = 0

    async def start(self) -> "World":
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def event(self, table: dict[str, asyncio.Event], name: str) -> asyncio.Event:
        return table.setdefault(name, asyncio.Event())

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name.startswith("slow"):
            self.event(self.held, name).set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event(self.released, name).wait(), 30)
        return web.json_response({"page": name})


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    server = await World().start()
    yield server
    for event in server.released.values():
        event.set()
    await server._runner.cleanup()


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The module's own stack (``client`` is the conftest's, on it)."""
    async with started(Stack(tmp_path_factory.mktemp("graceful"), env=ENV)) as running:
        yield running


async def two_runtimes(stack: Stack) -> None:
    """Both runtimes running (one may have been stopped by an earlier test)."""
    for worker, key in RUNTIMES.items():
        process = stack.processes.get(key)
        if process is None or process.poll() is not None:
            stack.start_process("runtime", key=key, env={"PARLEY_WORKER": worker})
    await eventually(lambda: _health_count(stack, "runtime", 2), within=30)


async def _health_count(stack: Stack, service: str, count: int) -> bool:
    """Whether ``count`` processes of ``service`` answer their health subject with ok."""
    nc = await nats.connect(stack.nats_url)
    try:
        answers: list[dict[str, Any]] = []

        async def collect(msg: Any) -> None:
            answers.append(json.loads(msg.data))

        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=collect)
        await nc.publish(subjects.health(service), b"", reply=inbox)
        await asyncio.sleep(0.3)
        await sub.unsubscribe()
        return sum(a["status"] == "ok" for a in answers) >= count
    finally:
        await nc.close()


async def web_agent(client: httpx.AsyncClient) -> str:
    spec = {
        "name": f"grace-{uuid.uuid4().hex[:8]}",
        "tools": [{"name": "http_request", "config": {"allowed_hosts": ["127.0.0.1"]}}],
        "instances": 2,
    }
    created = await client.post("/api/v1/agents", json=spec)
    assert created.status_code == 201, created.text
    agent_id = created.json()["data"]["id"]
    assert (await client.post(f"/api/v1/agents/{agent_id}/start")).status_code == 200
    return agent_id


def call(url: str) -> str:
    return f"call http_request({json.dumps({'url': url})})"


async def sigterm(stack: Stack, key: str) -> int:
    """SIGTERM process ``key`` and wait for it (15 s, then SIGKILL): its exit code."""
    process: subprocess.Popen[bytes] = stack.processes[key]
    await asyncio.to_thread(stack.stop_process, key, signal.SIGTERM, 15.0)
    return process.returncode


async def read_within_limits(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET ``path``, waiting out the rate limit (hundreds of reads follow a burst of load)."""
    answer = await client.get(path)
    for _ in range(60):
        if answer.status_code != 429:
            break
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
        answer = await client.get(path)
    return answer


async def execution_view(client: httpx.AsyncClient, agent_id: str, execution_id: str) -> dict:
    response = await client.get(f"/api/v1/agents/{agent_id}/executions/{execution_id}")
    return response.json()["data"] if response.status_code == 200 else {}


@pytest.mark.parametrize("held_past_grace", [False, True], ids=["finished", "handed-back"])
@pytest.mark.timeout(120)
async def test_a_runtime_stopped_mid_execution_finishes_or_hands_it_back_and_exits_0(
    client: httpx.AsyncClient, stack: Stack, world: World, held_past_grace: bool
) -> None:
    await two_runtimes(stack)
    agent_id = await web_agent(client)
    tag = uuid.uuid4().hex[:6]
    first, slow = f"first-{tag}", f"slow-{tag}"
    webhook = await client.post(
        f"/api/v1/agents/{agent_id}/webhook",
        json={"input_data": {"message": f"{call(world.url(first))} {call(world.url(slow))}"}},
    )
    assert webhook.status_code == 202, webhook.text
    execution_id = webhook.json()["data"]["execution_id"]
    await asyncio.wait_for(world.event(world.held, slow).wait(), 20)
    events = await stream_events(stack, f"execution-{execution_id}")
    holder = next(e.data["worker"] for e in events if e.type == "execution.started")

    stopping = asyncio.create_task(sigterm(stack, RUNTIMES[holder]))
    if not held_past_grace:
        await asyncio.sleep(1.0)  # within the grace period: the holder finishes it
        world.event(world.released, slow).set()
    assert await stopping == 0
    world.event(world.released, slow).set()

    async def finished() -> dict | None:
        view = await execution_view(client, agent_id, execution_id)
        return view if view.get("status") in ("completed", "failed") else None

    view = await eventually(finished, within=30)  # well within the minute of ack_wait
    assert view["status"] == "completed", view
    events = await stream_events(stack, f"execution-{execution_id}")
    types = [e.type for e in events]
    assert world.hits[first] == 1 and world.hits[slow] == 1  # no tool called twice
    assert types.count("tool.called") == 2
    assert types.count("execution.completed") == 1
    starts = [e.data["worker"] for e in events if e.type == "execution.started"]
    if held_past_grace:  # handed back: the other runtime resumed it
        assert len(starts) == 2 and starts[1] != holder
        failed = [e.data for e in events if e.type == "tool.failed"]
        assert [f["code"] for f in failed] == ["interrupted"]
    else:
        assert starts == [holder]
        assert types.count("tool.completed") == 2


async def request_held(client: httpx.AsyncClient, stack: Stack, world: World) -> tuple[str, str]:
    """Send a request (not waited for) whose turn calls a ``slow…`` page; once the world
    holds that call: the page and the conversation."""
    await two_runtimes(stack)
    agent_id = await web_agent(client)
    slow = f"slow-{uuid.uuid4().hex[:6]}"
    sent = await client.post(
        "/api/v1/messages",
        json={
            "performative": "request",
            "receivers": [agent_id],
            "content": call(world.url(slow)),
            "protocol": "fipa-request",
        },
    )
    assert sent.status_code == 202, sent.text
    await asyncio.wait_for(world.event(world.held, slow).wait(), 20)
    return slow, str(sent.json()["data"]["conversation_id"])


async def test_a_request_whose_answer_takes_a_while_shows_its_delivery_meanwhile(
    client: httpx.AsyncClient, stack: Stack, world: World
) -> None:
    """A quick answer carries the request's receipt (test_agents_answer); a turn that runs
    longer records the delivery while it runs, and its answer then carries none."""
    slow, conversation = await request_held(client, stack, world)
    stream = conversation_stream("default", conversation)

    async def types(count: int) -> list[str] | None:
        found = [e.type for e in await stream_events(stack, stream)]
        return found if len(found) >= count else None

    assert await eventually(lambda: types(2), within=10) == ["message.sent", "message.delivered"]
    world.event(world.released, slow).set()
    assert await eventually(lambda: types(3), within=30) == [
        "message.sent",
        "message.delivered",
        "message.sent",
    ]
    answer = (await stream_events(stack, stream))[2]
    assert answer.data["message"]["performative"] == "inform"
    assert answer.data.get("receipt") is None  # the delivery is recorded once


@pytest.mark.timeout(120)
async def test_a_runtime_stopped_mid_delivery_answers_the_message_once_and_exits_0(
    client: httpx.AsyncClient, stack: Stack, world: World
) -> None:
    slow, conversation = await request_held(client, stack, world)

    holder = await _holder(stack, conversation)
    stopping = asyncio.create_task(sigterm(stack, RUNTIMES[holder]))
    await asyncio.sleep(1.0)
    world.event(world.released, slow).set()
    assert await stopping == 0

    async def informed() -> list[dict] | None:
        page = await client.get(
            "/api/v1/messages", params={"conversation_id": conversation, "performative": "inform"}
        )
        return page.json()["data"] or None

    replies = await eventually(informed, within=30)
    await asyncio.sleep(0.5)  # a second answer would be recorded by now
    replies = await informed() or []
    assert len(replies) == 1, replies
    assert world.hits[slow] == 1


async def _holder(stack: Stack, conversation: str) -> str:
    """The runtime that took the conversation's delivery (its ``message.delivered``)."""

    async def delivered() -> str | None:
        events = await stream_events(stack, conversation_stream("default", conversation))
        workers = [e.data.get("worker") for e in events if e.type == "message.delivered"]
        return str(workers[0]) if workers and workers[0] else None

    return await eventually(delivered, within=10)


@pytest.mark.parametrize("service", ["registry", "messaging", "tasks"])
@pytest.mark.timeout(120)
async def test_a_service_stopped_under_load_exits_0_and_loses_no_acknowledged_request(
    client: httpx.AsyncClient, stack: Stack, service: str
) -> None:
    stack.start_process(service, key=f"{service}-2")  # the one that carries on
    await eventually(lambda: _health_count(stack, service, 2), within=30)
    receiver = await web_agent(client)
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            if service == "messaging":
                response = await client.post(
                    "/api/v1/messages",
                    json={"performative": "inform", "receivers": [receiver], "content": "x"},
                )
                if response.status_code // 100 == 2:
                    acknowledged.append(response.json()["data"]["message_id"])
            elif service == "tasks":
                response = await client.post(
                    "/api/v1/tasks", json={"name": "x", "participants": [receiver]}
                )
                if response.status_code // 100 == 2:
                    acknowledged.append(response.json()["data"]["task_id"])
            else:
                response = await client.post(
                    "/api/v1/agents", json={"name": f"load-{uuid.uuid4().hex[:10]}"}
                )
                if response.status_code // 100 == 2:
                    acknowledged.append(response.json()["data"]["id"])

    loops = [asyncio.create_task(load()) for _ in range(4)]
    await asyncio.sleep(0.5)
    code = await sigterm(stack, service)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*loops)
    assert code == 0
    assert acknowledged
    path = {"messaging": "/api/v1/messages", "tasks": "/api/v1/tasks"}.get(
        service, "/api/v1/agents"
    )
    for ident in acknowledged:
        found = await read_within_limits(client, f"{path}/{ident}")
        assert found.status_code == 200, (ident, found.text)
    stack.start_process(service)  # back to the usual shape for the tests below
    stack.stop_process(f"{service}-2")


async def test_an_edge_told_to_stop_fails_readiness_first_then_shuts_down(stack: Stack) -> None:
    port = free_port()
    drain = {"PARLEY_SHUTDOWN_DRAIN_S": "3", "PARLEY_EDGE_PORT": str(port)}
    edge = stack.start_process("edge", "edge-draining", drain)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        assert await eventually(ready, within=60, every=0.2)

        edge.send_signal(signal.SIGTERM)

        # still serving, but no longer ready: a load balancer stops sending first
        async def draining() -> dict[str, Any] | None:
            answer = await http.get("/ready")
            return answer.json() if answer.status_code == 503 else None

        refused = await eventually(draining, within=2, every=0.05)
        assert refused["error"]["details"]["stopping"] is True
        assert (await http.get("/health")).status_code == 200
    # uvicorn re-raises the signal once its shutdown is complete: the exit says SIGTERM
    assert await asyncio.to_thread(edge.wait, 30) == -signal.SIGTERM
    stack.processes.pop("edge-draining", None)
    log = (stack.state_dir / "logs" / "edge-draining.log").read_text()
    assert "Application shutdown complete." in log
