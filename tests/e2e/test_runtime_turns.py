"""Chat turns through the edge on the offline provider: tools, streams that resume, cancel,
concurrent messages, strategies, files, budgets and SSRF refusals.

A local HTTP server in the test process stands in for the outside world the `http_request`
tool reaches; its `/slow` path holds a turn mid-flight until the test releases it.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from e2e_support import World
from e2e_support import call
from e2e_support import new_agent
from e2e_support import web_tools
from httpx_sse import aconnect_sse
from nats.aio.msg import Msg
from tests_support import stream_events

from parley.contracts import subjects
from parley.devstack.stack import Stack


async def agent(client: httpx.AsyncClient, **spec: Any) -> str:
    return await new_agent(client, "turns", **spec)


async def chat(client: httpx.AsyncClient, agent_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/agents/{agent_id}/chat", json=body, timeout=30)


async def test_a_turn_with_two_tool_calls_on_the_offline_provider(client, stack: Stack):
    agent_id = await agent(client, tools=[{"name": "calculator"}, {"name": "current_time"}])
    message = f"{call('calculator', expression='2+3*4')} and {call('current_time')}"
    response = await chat(client, agent_id, message=message)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["response"].startswith("results: calculator: 14; current_time: ")
    assert [c["name"] for c in data["tool_calls"]] == ["calculator", "current_time"]
    assert data["tokens_used"] == data["usage"]["input_tokens"] + data["usage"]["output_tokens"]
    assert data["response_time_ms"] > 0
    events = await stream_events(stack, f"session-{data['conversation_id']}")
    types = [e.type for e in events]
    assert types == [
        "turn.started",  # it opens the conversation: no session.created before it
        "turn.step_recorded",
        "tool.called",
        "tool.completed",
        "tool.called",
        "tool.completed",
        "turn.completed",  # the last answer, which called no tool, is recorded with the end
    ]
    completed = [e for e in events if e.type == "tool.completed"]
    assert completed[0].data["content"] == "14"
    assert all(e.data["duration_ms"] >= 0 for e in completed)
    asked, end = events[1].data, events[-1].data
    assert [c["name"] for c in asked["tool_calls"]] == ["calculator", "current_time"]
    last = end["last_step"]
    assert last["kind"] == "model" and last["step"] == 4 and not last.get("tool_calls")
    assert last["text"] == data["response"] and last["usage"]["output_tokens"] > 0


async def test_an_answer_without_tools_is_recorded_with_the_turns_end(client, stack: Stack):
    agent_id = await agent(client)
    response = await chat(client, agent_id, message="hello")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    events = await stream_events(stack, f"session-{data['conversation_id']}")
    assert [e.type for e in events] == ["turn.started", "turn.completed"]
    last = events[-1].data["last_step"]
    assert last["kind"] == "model" and last["step"] == 1 and last["text"] == "echo: hello"
    assert last["usage"] == data["usage"] and last["provider"] == "offline"


async def test_a_conversation_is_opened_by_its_first_turns_start(client, stack: Stack):
    agent_id = await agent(client)
    first = (await chat(client, agent_id, message="hello")).json()["data"]
    conversation = first["conversation_id"]
    second = await chat(client, agent_id, message="again", conversation_id=conversation)
    assert second.status_code == 200, second.text
    events = await stream_events(stack, f"session-{conversation}")
    starts = [e for e in events if e.type == "turn.started"]
    assert events[0] is starts[0] and "session.created" not in [e.type for e in events]
    assert starts[0].data["opens"] is not None and starts[0].data["agent_id"] == agent_id
    assert starts[1].data.get("opens") is None  # only the first start opens it
    view = await client.get(f"/api/v1/sessions/{conversation}")
    assert view.status_code == 200, view.text
    session = view.json()["data"]
    assert session["agent_id"] == agent_id
    assert [m["content"] for m in session["history"]] == [
        "hello",
        "echo: hello",
        "again",
        "echo: again",
    ]


async def test_a_conversation_keeps_its_history(client):
    agent_id = await agent(client)
    first = (await chat(client, agent_id, message="my name is Ada")).json()["data"]
    second = await chat(
        client, agent_id, message="what is my name?", conversation_id=first["conversation_id"]
    )
    assert second.status_code == 200
    session = (await client.get(f"/api/v1/sessions/{first['conversation_id']}")).json()["data"]
    contents = [m["content"] for m in session["history"]]
    assert contents[:2] == ["my name is Ada", "echo: my name is Ada"]
    assert contents[-1] == "echo: what is my name?"


async def test_chat_needs_a_running_agent(client):
    created = await client.post("/api/v1/agents", json={"name": f"idle-{uuid.uuid4().hex[:8]}"})
    agent_id = created.json()["data"]["id"]
    response = await chat(client, agent_id, message="hi")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "AGENT_NOT_RUNNING"


async def test_plan_and_execute_records_the_plan_and_each_step(client, stack: Stack):
    agent_id = await agent(
        client,
        tools=[{"name": "calculator"}],
        strategy={"name": "plan_and_execute", "config": {"max_iterations": 2}},
    )
    message = "\n".join(
        [
            f"1. {call('calculator', expression='1+1')}",
            f"2. {call('calculator', expression='2*3')}",
            f"3. {call('calculator', expression='9-1')}",
        ]
    )
    response = await chat(client, agent_id, message=message)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["response"] == "1. results: calculator: 2\n2. results: calculator: 6"
    events = await stream_events(stack, f"session-{data['conversation_id']}")
    kinds = [e.data["kind"] for e in events if e.type == "turn.step_recorded"]
    assert kinds.count("plan") == 1 and kinds.count("plan_step") == 2  # cut at max_iterations


async def read_until(events: AsyncIterator[Any], kind: str) -> list[Any]:
    seen = []
    async for sse in events:
        seen.append(sse)
        if sse.event == kind:
            return seen
    raise AssertionError(f"stream ended before {kind}: {[s.event for s in seen]}")


async def test_a_token_stream_resumes_mid_turn_after_a_disconnect(client, world: World):
    world.reset()
    agent_id = await agent(client, **web_tools())
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    message = call("http_request", url=world.url("slow-resume"))
    async with aconnect_sse(client, "POST", path, json={"message": message}) as source:
        assert source.response.status_code == 200
        before = await read_until(source.aiter_sse(), "tool_call")
    last_id = before[-1].id
    turn_id = json.loads(before[0].data)["turn_id"]
    world.release.set()  # the turn goes on while nobody listens
    async with aconnect_sse(
        client, "GET", path, params={"turn_id": turn_id}, headers={"Last-Event-ID": last_id}
    ) as source:
        after = [sse async for sse in source.aiter_sse()]
    kinds = [s.event for s in after]
    assert kinds[0] == "tool_result" and kinds[-1] == "end"
    assert "token" in kinds
    seqs = [int(s.id.rsplit(":", 1)[1]) for s in before + after]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, nothing twice
    assert json.loads(after[-1].data)["response"].startswith("results: http_request: ")


async def test_cancel_mid_stream_ends_the_turn_cancelled(client, world: World, stack: Stack):
    world.reset()
    agent_id = await agent(client, **web_tools())
    path = f"/api/v1/agents/{agent_id}/chat/stream"
    message = call("http_request", url=world.url("slow-cancel"))
    async with aconnect_sse(client, "POST", path, json={"message": message}) as source:
        frames = source.aiter_sse()
        start = await read_until(frames, "tool_call")
        conversation = json.loads(start[0].data)["conversation_id"]
        cancelled = await client.post(
            f"/api/v1/agents/{agent_id}/cancel", json={"conversation_id": conversation}
        )
        assert cancelled.status_code == 200, cancelled.text
        rest = [sse async for sse in frames]
    assert rest[-1].event == "end"
    assert json.loads(rest[-1].data)["outcome"] == "cancelled"
    events = await stream_events(stack, f"session-{conversation}")
    assert events[-1].type == "turn.cancelled"
    again = await client.post(
        f"/api/v1/agents/{agent_id}/cancel", json={"conversation_id": conversation}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "NO_ACTIVE_TURN"
    world.release.set()


async def busy_session(client: httpx.AsyncClient, world: World, name: str) -> tuple[str, str]:
    """An agent and a conversation whose turn is held at the slow server."""
    agent_id = await agent(client, **web_tools())
    first = (await chat(client, agent_id, message="hello")).json()["data"]
    conversation = first["conversation_id"]
    held = asyncio.create_task(
        chat(
            client,
            agent_id,
            message=call("http_request", url=world.url(name)),
            conversation_id=conversation,
        )
    )
    await asyncio.wait_for(world.was_held(name).wait(), 10)
    busy_session.tasks.append(held)
    return agent_id, conversation


busy_session.tasks = []  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def commands_seen(stack: Stack, verb: str, containing: bytes) -> AsyncIterator[asyncio.Event]:
    """An event set once a runtime ``verb`` command containing ``containing`` was sent."""
    nc = await nats.connect(stack.nats_url)
    seen = asyncio.Event()

    async def look(msg: Msg) -> None:
        if containing in msg.data:
            seen.set()

    try:
        await nc.subscribe(subjects.cmd("runtime", verb), cb=look)
        await nc.flush()
        yield seen
    finally:
        await nc.close()


async def test_concurrent_messages_follow_the_policy(client, world: World, stack: Stack):
    world.reset()
    agent_id, conversation = await busy_session(client, world, "slow-policy")
    held = busy_session.tasks.pop()

    rejected = await chat(
        client, agent_id, message="me too", conversation_id=conversation, policy="reject"
    )
    assert rejected.status_code == 409
    assert rejected.json()["error"]["code"] == "SESSION_BUSY"

    async with commands_seen(stack, "chat", b"after you") as delivered:
        message = {"message": "after you", "conversation_id": conversation, "policy": "enqueue"}
        queued = asyncio.create_task(chat(client, agent_id, **message))
        await asyncio.wait_for(delivered.wait(), 10)  # the runtime has the message too
    assert not queued.done()  # waits for the running turn
    world.release.set()
    first, second = await held, await queued
    assert first.status_code == 200 and second.status_code == 200
    assert second.json()["data"]["response"] == "echo: after you"
    events = await stream_events(stack, f"session-{conversation}")
    ended = next(
        e.position
        for e in events
        if e.type == "turn.completed" and e.data["run_id"] == first.json()["data"]["turn_id"]
    )
    began = next(
        e.position
        for e in events
        if e.type == "turn.started" and e.data["turn_id"] == second.json()["data"]["turn_id"]
    )
    assert ended < began  # it started once the running turn had ended

    world.reset()
    held = asyncio.create_task(
        chat(
            client,
            agent_id,
            message=call("http_request", url=world.url("slow-interrupt")),
            conversation_id=conversation,
        )
    )
    await asyncio.wait_for(world.was_held("slow-interrupt").wait(), 10)
    interrupting = await chat(
        client, agent_id, message="stop that", conversation_id=conversation, policy="interrupt"
    )
    assert interrupting.status_code == 200, interrupting.text
    assert interrupting.json()["data"]["response"] == "echo: stop that"
    interrupted = await held
    assert interrupted.json()["data"]["outcome"] == "cancelled"
    world.release.set()
    types = [e.type for e in await stream_events(stack, f"session-{conversation}")]
    assert types.count("turn.cancelled") == 1
    assert types.count("turn.completed") == 4


async def test_files_can_be_referenced_in_chat_and_read_by_a_tool(client):
    agent_id = await agent(client, tools=[{"name": "read_file"}])
    first = (await chat(client, agent_id, message="hello")).json()["data"]
    conversation = first["conversation_id"]
    upload = await client.post(
        f"/api/v1/sessions/{conversation}/files",
        files={"file": ("notes.txt", b"the launch code is 1234", "text/plain")},
    )
    assert upload.status_code == 201, upload.text
    referenced = await chat(
        client, agent_id, message="summarise", conversation_id=conversation, files=["notes.txt"]
    )
    assert "the launch code is 1234" in referenced.json()["data"]["response"]
    by_tool = await chat(
        client, agent_id, message=call("read_file", name="notes.txt"), conversation_id=conversation
    )
    assert "the launch code is 1234" in by_tool.json()["data"]["response"]
    missing = await chat(
        client, agent_id, message="x", conversation_id=conversation, files=["nope.txt"]
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "FILE_NOT_FOUND"


async def test_a_budget_warns_then_goes_critical_then_refuses(client, stack: Stack):
    agent_id = await agent(client, budget={"max_tokens": 40})
    statuses = []
    for _ in range(12):
        response = await chat(client, agent_id, message="one two three four five")
        statuses.append(response.status_code)
        if response.status_code != 200:
            break
    assert statuses[-1] == 402, statuses
    assert 200 in statuses
    error = response.json()["error"]
    assert error["code"] == "BUDGET_EXCEEDED"
    assert "token budget of 40" in error["message"]
    events = await stream_events(stack, f"budget-{agent_id}")
    types = [e.type for e in events]
    assert types.count("budget.warning") == 1 and types.count("budget.critical") == 1
    assert types.index("budget.warning") < types.index("budget.critical")
    consumed = [e.data["total_tokens"] for e in events if e.type == "budget.consumed"]
    assert consumed == sorted(consumed) and consumed[-1] >= 40


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/ssrf",
        "http://localhost:{port}/ssrf",
        "http://2130706433:{port}/ssrf",
        "http://0x7f000001:{port}/ssrf",
        "http://[::ffff:127.0.0.1]:{port}/ssrf",
        "http://169.254.169.254/latest/meta-data/",
        "http://example.com@127.0.0.1:{port}/ssrf",
    ],
)
async def test_ssrf_attempts_through_http_request_are_refused(client, world: World, url, stack):
    agent_id = await agent(client, tools=[{"name": "http_request"}])  # no allowlist
    target = url.format(port=world.port)
    before = world.hits.get("ssrf", 0)
    response = await chat(client, agent_id, message=call("http_request", url=target))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    result = data["tool_calls"][0]["result"]
    assert result["ok"] is False
    assert result["error"]["code"] == "refused", result
    assert world.hits.get("ssrf", 0) == before  # nothing reached the loopback server
    events = await stream_events(stack, f"session-{data['conversation_id']}")
    assert "tool.failed" in [e.type for e in events]


async def test_messages_racing_for_one_session_never_interleave(client, stack: Stack):
    agent_id = await agent(client, instances=8)
    first = (await chat(client, agent_id, message="hello")).json()["data"]
    conversation = first["conversation_id"]

    async def send(i: int, policy: str) -> httpx.Response:
        return await chat(
            client, agent_id, message=f"m{i}", conversation_id=conversation, policy=policy
        )

    rejected = await asyncio.gather(*(send(i, "reject") for i in range(6)))
    codes = sorted(r.status_code for r in rejected)
    assert 200 in codes and set(codes) <= {200, 409}, codes
    queued = await asyncio.gather(*(send(i, "enqueue") for i in range(6, 12)))
    assert [r.status_code for r in queued] == [200] * 6
    events = await stream_events(stack, f"session-{conversation}")
    starts = [e for e in events if e.type == "turn.started"]
    assert len(starts) == 1 + codes.count(200) + 6  # a refused message leaves no event
    # turns never overlap: each start is followed by its own end before the next start
    trace = "\n".join(
        f"{e.version} {e.type} {e.data.get('turn_id') or e.data.get('run_id')}"
        f" {(e.data.get('error') or {}).get('message', '')}"
        for e in events
    )
    open_turn = None
    for event in events:
        if event.type == "turn.started":
            assert open_turn is None, f"two turns ran at once in one session:\n{trace}"
            open_turn = event.data["turn_id"]
        elif event.type in ("turn.completed", "turn.failed", "turn.cancelled"):
            assert event.data["run_id"] == open_turn, trace
            open_turn = None
        elif event.type.startswith(("turn.", "tool.")):
            assert event.data["run_id"] == open_turn, trace
