"""Durable executions through the edge, with two runtime processes on one queue.

Webhook → queued → run on either runtime; a runtime killed mid-run (kill -9) leaves its work
item unacknowledged, so the other resumes it from the recorded steps; approvals park a run in
`input_required`; cancel stops it wherever it runs; periodic triggers fire once per slot
whichever runtime leads.

A local HTTP server stands in for the outside world the `http_request` tool reaches: it
counts hits per path, and a `slow…` path holds its answer until the test releases it.
"""

import asyncio
import itertools
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import nats
import pytest
from e2e_support import World
from e2e_support import call
from e2e_support import new_agent
from e2e_support import web_tools
from nats.aio.msg import Msg
from tests_support import edge_client
from tests_support import eventually
from tests_support import stream_events

from parley.contracts import subjects
from parley.devstack.stack import Stack

HOLD_S = 8.0
ENV = {
    "PARLEY_ACK_WAIT": "2",
    "PARLEY_SCHEDULER_TICK": "0.2",
    "PARLEY_LEASE_TTL": "2",
    "PARLEY_WORKER": "runtime-a",
}
WORKERS = {"runtime-a": "runtime", "runtime-b": "runtime-b", "runtime-c": "runtime-c"}
"""Worker name → the stack's process key."""


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return ENV


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """The 'internet', whose slow paths hold their answer at most ``HOLD_S``."""
    async with World(hold_s=HOLD_S) as running:
        yield running


@pytest.fixture(scope="module")
async def two_runtimes(own_stack: Stack) -> Stack:
    """The stack with a second runtime (`runtime-b`) pulling from the same queue."""
    own_stack.start_process("runtime", key="runtime-b", env={"PARLEY_WORKER": "runtime-b"})
    await pulling_workers(own_stack, 2)
    return own_stack


@pytest.fixture
async def client(two_runtimes: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(two_runtimes, timeout=20) as http:
        yield http


async def pulling_workers(stack: Stack, count: int, within: float = 20.0) -> None:
    """Wait until ``count`` runtimes answer health (each has started its execution worker)."""
    nc = await nats.connect(stack.nats_url)
    try:
        answers: list[bytes] = []

        async def collect(msg: Msg) -> None:
            answers.append(msg.data)

        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert not stack.dead(), f"exited: {stack.dead()}"
            answers.clear()
            inbox = nc.new_inbox()
            replies = await nc.subscribe(inbox, cb=collect)
            await nc.publish(subjects.health("runtime"), b"", reply=inbox)
            await asyncio.sleep(0.2)
            await replies.unsubscribe()
            if len(answers) >= count:
                return
        raise AssertionError(f"{count} runtimes were not up after {within}s")
    finally:
        await nc.close()


async def agent(client: httpx.AsyncClient, **spec: Any) -> str:
    return await new_agent(client, "exec", **spec)


async def webhook(client: httpx.AsyncClient, agent_id: str, message: str, **options: Any) -> str:
    body: dict[str, Any] = {"input_data": {"message": message}}
    if options:
        body["execution_options"] = options
    response = await client.post(f"/api/v1/agents/{agent_id}/webhook", json=body)
    assert response.status_code == 202, response.text
    execution_id = response.json()["data"]["execution_id"]
    assert response.headers["location"].endswith(f"/executions/{execution_id}")
    return execution_id


async def wait_status(
    client: httpx.AsyncClient, agent_id: str, execution_id: str, *statuses: str, within=15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/agents/{agent_id}/executions/{execution_id}")
        if response.status_code == 200:
            view = response.json()["data"]
            if view["status"] in statuses:
                return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution not {statuses} after {within}s: {view}")


async def periodic_slots(
    client: httpx.AsyncClient, agent_id: str, at_least: int = 0, within: float = 15.0
) -> list[str]:
    """The slots an agent's periodic executions were fired for, once there are ``at_least``."""

    async def slots() -> list[str] | None:
        listing = await client.get(
            f"/api/v1/agents/{agent_id}/executions", params={"trigger": "periodic", "limit": 200}
        )
        assert listing.status_code == 200, listing.text
        found = [e["input_data"]["scheduled_for"] for e in listing.json()["data"]]
        return found if len(found) >= at_least else None

    return await eventually(slots, within=within) if at_least else (await slots() or [])


async def let_go(stack: Stack, execution_id: str, within: float = 10.0) -> None:
    """Wait until no runtime holds the execution (none answers on its control subject)."""
    nc = await nats.connect(stack.nats_url)
    try:

        async def nobody_holds_it() -> bool:
            try:
                await nc.request(subjects.control("execution", execution_id), b"ping", timeout=1)
            except nats.errors.NoRespondersError:
                return True
            except nats.errors.TimeoutError:
                return False  # a ping that reached a worker as it let go goes unanswered
            return False

        await eventually(nobody_holds_it, within=within)
    finally:
        await nc.close()


def approval_agent() -> dict[str, Any]:
    return {"tools": [{"name": "calculator", "config": {"requires_approval": True}}]}


async def test_a_webhook_execution_completes_with_its_steps_recorded(client, two_runtimes):
    agent_id = await agent(client, tools=[{"name": "calculator"}])
    execution_id = await webhook(client, agent_id, call("calculator", expression="6*7"))
    view = await wait_status(client, agent_id, execution_id, "completed", "failed")
    assert view["status"] == "completed", view
    assert view["output"] == "results: calculator: 42"
    assert view["trigger"] == "webhook" and view["attempts"] == 1
    events = await stream_events(two_runtimes, f"execution-{execution_id}")
    assert [e.type for e in events] == [
        "execution.requested",
        "execution.started",
        "execution.step_recorded",
        "tool.called",
        "tool.completed",
        "execution.completed",  # the last answer, which called no tool, is recorded with it
    ]
    assert events[-1].data["usage"]["input_tokens"] > 0
    last = events[-1].data["last_step"]
    assert last["kind"] == "model" and last["text"] == view["output"]
    steps = [(s["step"], s["type"]) for s in view["steps"]]
    assert steps == [(1, "model"), (2, "tool_called"), (2, "tool_completed"), (3, "model")]


async def test_a_runtime_killed_mid_run_is_resumed_by_another_without_repeating_a_tool(
    client, two_runtimes, world
):
    agent_id = await agent(client, **web_tools())
    tag = uuid.uuid4().hex[:6]
    first, slow = f"first-{tag}", f"slow-{tag}"
    message = (
        f"{call('http_request', url=world.url(first))} {call('http_request', url=world.url(slow))}"
    )
    execution_id = await webhook(client, agent_id, message)
    await asyncio.wait_for(world.was_held(slow).wait(), 10)
    events = await stream_events(two_runtimes, f"execution-{execution_id}")
    victim = next(e.data["worker"] for e in events if e.type == "execution.started")
    await asyncio.to_thread(two_runtimes.stop_process, WORKERS[victim], signal.SIGKILL)
    world.release.set()  # the killed runtime's request ends on a dead socket

    view = await wait_status(client, agent_id, execution_id, "completed", "failed", within=20)
    assert view["status"] == "completed", view
    events = await stream_events(two_runtimes, f"execution-{execution_id}")
    starts = [e.data for e in events if e.type == "execution.started"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[1]["worker"] != victim
    assert world.hits[first] == 1  # recorded before the kill: replayed, not called again
    assert world.hits[slow] == 1  # running at the kill; not idempotent: not repeated
    failed = [e.data for e in events if e.type == "tool.failed"]
    assert [f["code"] for f in failed] == ["interrupted"]
    assert sum(e.type == "tool.completed" for e in events) == 1
    assert [e.type for e in events].count("execution.completed") == 1

    # keep two runtimes for the tests below
    survivor = "runtime-c"
    two_runtimes.start_process("runtime", key=survivor, env={"PARLEY_WORKER": survivor})
    await pulling_workers(two_runtimes, 2)


async def test_an_approval_parks_the_run_and_an_answer_resumes_it(client, two_runtimes):
    agent_id = await agent(client, **approval_agent())
    execution_id = await webhook(client, agent_id, call("calculator", expression="6*7"))
    view = await wait_status(client, agent_id, execution_id, "input_required")
    pending = view["pending_input"]
    assert pending["tool"] == "calculator" and pending["arguments"] == {"expression": "6*7"}
    answered = await client.post(
        f"/api/v1/agents/{agent_id}/executions/{execution_id}/input", json={"approved": True}
    )
    assert answered.status_code == 200, answered.text
    view = await wait_status(client, agent_id, execution_id, "completed", "failed")
    assert view["output"] == "results: calculator: 42"
    events = await stream_events(two_runtimes, f"execution-{execution_id}")
    types = [e.type for e in events]
    assert types.count("execution.step_recorded") == 1  # the first answer was replayed
    assert events[-1].data["last_step"]["step"] == 3  # the last one came with the end
    assert types.count("tool.completed") == 1
    assert [e.data["attempt"] for e in events if e.type == "execution.started"] == [1, 2]

    again = await client.post(
        f"/api/v1/agents/{agent_id}/executions/{execution_id}/input", json={"approved": True}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "INPUT_NOT_EXPECTED"


async def test_a_denied_call_fails_for_the_model_and_a_response_stands_in_for_the_tool(client):
    agent_id = await agent(client, **approval_agent())
    denied = await webhook(client, agent_id, call("calculator", expression="1+1"))
    answered = await webhook(client, agent_id, call("calculator", expression="2+2"))
    for execution_id in (denied, answered):
        await wait_status(client, agent_id, execution_id, "input_required")
    base = f"/api/v1/agents/{agent_id}/executions"
    assert (await client.post(f"{base}/{denied}/input", json={"approved": False})).is_success
    response = {"approved": True, "response": "four, says a person"}
    assert (await client.post(f"{base}/{answered}/input", json=response)).is_success
    view = await wait_status(client, agent_id, denied, "completed", "failed")
    assert view["output"] == "results: calculator: error (denied): a person denied this call"
    view = await wait_status(client, agent_id, answered, "completed", "failed")
    assert view["output"] == "results: calculator: four, says a person"


async def test_the_executions_list_pages_a_filter_in_order_with_whole_views(client):
    agent_id = await agent(client, tools=[{"name": "calculator", "config": {}}])
    done = [
        await webhook(client, agent_id, call("calculator", expression=f"{n}+1")) for n in range(5)
    ]
    for execution_id in done:
        await wait_status(client, agent_id, execution_id, "completed")
    asking = await agent(client, **approval_agent())
    waiting = await webhook(client, asking, call("calculator", expression="1"))
    await wait_status(client, asking, waiting, "input_required")

    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"status": "completed", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/api/v1/agents/{agent_id}/executions", params=params)).json()
        assert page["pagination"]["total_count"] == 5 and len(page["data"]) <= 2
        listed += page["data"]
        if (cursor := page["pagination"]["next_cursor"]) is None:
            break
    assert [e["id"] for e in listed] == done  # oldest first, each once
    one = await client.get(f"/api/v1/agents/{agent_id}/executions/{done[3]}")
    assert listed[3] == one.json()["data"]  # the whole view, steps and output included
    assert listed[3]["output"] == "results: calculator: 4"
    others = await client.get(f"/api/v1/agents/{asking}/executions", params={"status": "completed"})
    assert others.json()["data"] == []
    held = await client.get(
        f"/api/v1/agents/{asking}/executions", params={"status": "input_required"}
    )
    assert [e["id"] for e in held.json()["data"]] == [waiting]


async def test_cancel_stops_a_waiting_or_running_execution_and_refuses_a_finished_one(
    client, two_runtimes, world
):
    waiting_agent = await agent(client, **approval_agent())
    waiting = await webhook(client, waiting_agent, call("calculator", expression="1"))
    await wait_status(client, waiting_agent, waiting, "input_required")
    cancelled = await client.post(f"/api/v1/agents/{waiting_agent}/executions/{waiting}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"

    web = await agent(client, **web_tools())
    slow = f"slow-{uuid.uuid4().hex[:6]}"
    world.release.clear()
    running = await webhook(client, web, call("http_request", url=world.url(slow)))
    await asyncio.wait_for(world.was_held(slow).wait(), 10)
    began = time.monotonic()
    response = await client.post(f"/api/v1/agents/{web}/executions/{running}/cancel")
    assert response.status_code == 200, response.text
    await wait_status(client, web, running, "cancelled")
    await let_go(two_runtimes, running)  # no worker holds it: none can record more
    events = await stream_events(two_runtimes, f"execution-{running}")
    assert events[-1].type == "execution.cancelled"
    assert not {"execution.completed", "execution.failed", "tool.completed"} & {
        e.type for e in events
    }
    assert time.monotonic() - began < HOLD_S / 2  # it did not wait for the tool
    world.release.set()

    again = await client.post(f"/api/v1/agents/{web}/executions/{running}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "INVALID_STATE_TRANSITION"


async def test_an_execution_past_its_timeout_fails_with_timeout(client, two_runtimes, world):
    agent_id = await agent(client, **web_tools())
    slow = f"slow-{uuid.uuid4().hex[:6]}"
    world.release.clear()
    message = call("http_request", url=world.url(slow))
    execution_id = await webhook(client, agent_id, message, timeout_seconds=1)
    view = await wait_status(client, agent_id, execution_id, "completed", "failed")
    world.release.set()
    assert view["status"] == "failed" and view["error"]["code"] == "TIMEOUT", view
    events = await stream_events(two_runtimes, f"execution-{execution_id}")
    assert [e.data["attempt"] for e in events if e.type == "execution.started"] == [1]


async def test_a_periodic_agent_fires_once_per_slot_across_two_runtimes_until_paused(client):
    every_second = {"trigger": {"type": "periodic", "interval_seconds": 1}}
    agent_id = await agent(client, **every_second)
    slots = await periodic_slots(client, agent_id, at_least=3)
    assert 3 <= len(slots) <= 4, slots
    assert len(set(slots)) == len(slots)
    times = sorted(datetime.fromisoformat(s) for s in slots)
    assert all((b - a).total_seconds() == 1 for a, b in itertools.pairwise(times)), slots

    paused = await client.post(f"/api/v1/agents/{agent_id}/pause")
    assert paused.status_code == 200, paused.text
    # A witness started after the pause: the scheduler fires it only once it has seen the
    # start, so the pause too. The tick after the one that fired its first slot looks at the
    # paused agent with the pause known; each later slot of the witness is a tick past it.
    witness = await agent(client, **every_second)
    await periodic_slots(client, witness, at_least=2)
    before = await periodic_slots(client, agent_id)
    await periodic_slots(client, witness, at_least=4)
    after = await periodic_slots(client, agent_id)
    assert after == before
