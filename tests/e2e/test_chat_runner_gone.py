"""A sync chat whose runtime is killed mid-turn is answered at once, and its turn ended.

Through the real stack: the offline provider holds each answer (``[offline:delay_ms=N]``),
the runtime running the turn is killed (kill -9) and another one started; the waiting chat
gets ``503 SERVICE_UNAVAILABLE`` naming its conversation and turn within seconds, not at the
edge's chat timeout (120 s), and the turn is recorded as failed (the session has no running
turn). A slow turn whose runtime lives is answered as usual.
"""

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from e2e_support import new_agent
from tests_support import edge_client
from tests_support import eventually
from tests_support import stream_events

from parley.devstack.stack import Stack

ENV = {"PARLEY_WORKER": "runtime-a"}


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return ENV


@pytest.fixture
async def client(own_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(own_stack, timeout=150) as http:
        yield http


async def _slow_agent(client: httpx.AsyncClient, delay_ms: int) -> str:
    return await new_agent(
        client, "slow", instances=1, system_prompt=f"[offline:delay_ms={delay_ms}]"
    )


async def _running_turn(client: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    """The agent's session once its turn is running."""

    async def running() -> dict[str, Any] | None:
        listed = await client.get("/api/v1/sessions", params={"agent_id": agent_id})
        assert listed.status_code == 200, listed.text
        active = [s for s in listed.json()["data"] if s["active_turn"] is not None]
        return active[0] if active else None

    found: dict[str, Any] = await eventually(running, within=15)
    return found


async def test_a_chat_whose_runtime_is_killed_is_answered_at_once_and_its_turn_ended(
    client: httpx.AsyncClient, own_stack: Stack
) -> None:
    agent_id = await _slow_agent(client, 60_000)
    chat = asyncio.create_task(
        client.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hello"})
    )
    session = await _running_turn(client, agent_id)
    await asyncio.sleep(1.5)  # the edge has seen the runtime answer for the turn
    await asyncio.to_thread(own_stack.stop_process, "runtime", signal.SIGKILL)
    killed = time.monotonic()
    own_stack.start_process("runtime", key="runtime-b", env={"PARLEY_WORKER": "runtime-b"})

    answer = await asyncio.wait_for(chat, 60)
    assert time.monotonic() - killed < 20  # not the 120 s chat timeout
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    turn_id = session["active_turn"]["turn_id"]
    assert error["details"] == {"conversation_id": session["id"], "turn_id": turn_id}
    assert "recorded as failed" in error["message"], error

    events = await stream_events(own_stack, f"session-{session['id']}")
    assert [e.type for e in events][-2:] == ["turn.started", "turn.failed"]
    assert events[-1].data["run_id"] == turn_id
    view = await client.get(f"/api/v1/sessions/{session['id']}")
    assert view.json()["data"]["active_turn"] is None


async def test_a_slow_turn_whose_runtime_lives_is_answered(client: httpx.AsyncClient) -> None:
    agent_id = await _slow_agent(client, 4_500)  # past the first pings and a grace
    answer = await client.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hello"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["response"] == "echo: hello"
