"""Deployments: what routing a turn by weights costs, and how fast a bad canary rolls back.

- Routing: the runtime's :class:`~parley.runtime.adapters.rollouts.Rollouts` choosing the
  definition of each turn of an agent under a rolling-out canary (new conversations, then
  pinned ones), timed call by call in-process: what it adds to every turn.
- Rollback: a canary at 100 % whose new prompt fails (``[offline:fail]``), through the whole
  stack, one turn after another; from the recorded end of the turn that crosses the threshold
  (the ``min_samples``-th failure) to the recorded ``deployment.rolled_back``, and to the
  first turn the runtime then runs on the old definition (the rollback in effect).
"""

import time
import uuid
from datetime import UTC
from datetime import datetime

import aiohttp

from bench._stats import percentile
from bench._stats import post
from parley.aggregates.agent import evolve
from parley.contracts.envelope import Event
from parley.contracts.runtime import session_stream
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store
from parley.runtime.adapters.rollouts import Rollouts

__all__ = ["rollback", "routing"]

_MIN_SAMPLES = 5


def _event(stream: str, type_: str, data: dict[str, object], version: int) -> Event:
    now = datetime.now(UTC)
    return Event(
        id=uuid.uuid4().hex,
        type=type_,
        source="/bench",
        subject=stream.split("-", 1)[1],
        time=now,
        data=data,
        stream=stream,
        version=version,
        position=version,
        namespace="default",
    )


def routing(count: int = 200_000) -> None:
    """Time ``Rollouts.route`` for new conversations, then for pinned ones."""
    created_agent = _event(
        "agent-a1", "agent.created", {"agent_id": "a1", "spec": {"name": "bench"}}, 1
    )
    agent = evolve(None, created_agent)
    assert agent is not None
    rollouts = Rollouts()
    rollouts.fold(created_agent)
    created = {
        "deployment_id": "d1",
        "agent_id": "a1",
        "spec": {"name": "bench", "system_prompt": "v2"},
        "version_label": "v2",
        "strategy": "canary",
        "stages": [{"percentage": 10, "duration_s": 600}, {"percentage": 100}],
        "rollback_on_error": True,
        "error_threshold": 0.05,
        "min_samples": 20,
        "from_version": 1,
    }
    rollouts.fold(_event("deployment-d1", "deployment.created", created, 1))
    started = {"deployment_id": "d1", "stage": 0, "percentage": 10}
    rollouts.fold(_event("deployment-d1", "deployment.stage_started", started, 2))
    conversations = [str(uuid.uuid4()) for _ in range(count)]
    for label in ("new conversations", "pinned conversations"):
        latencies: list[float] = []
        begun = time.perf_counter()
        for conversation in conversations:
            start = time.perf_counter_ns()
            rollouts.route(agent, conversation)
            latencies.append((time.perf_counter_ns() - start) / 1e9)
        seconds = time.perf_counter() - begun
        line = f"route a turn by a canary's weights, {label}"
        print(
            f"{line:<58} {count / seconds:>10,.0f}/s  p50 {percentile(latencies, 50) * 1e6:.1f} µs"
            f"  p99 {percentile(latencies, 99) * 1e6:.1f} µs",
            flush=True,
        )


async def rollback(edge_url: str, nats_url: str, repeat: int = 20) -> None:
    """Time ``repeat`` failing canaries from the threshold's crossing to the rollback."""
    store = await open_store(nats_url=nats_url)
    recorded: list[float] = []
    in_effect: list[float] = []
    try:
        async with aiohttp.ClientSession(edge_url) as http:
            for _ in range(repeat):
                crossed, back, old = await _one_rollback(http, store)
                recorded.append(back - crossed)
                in_effect.append(old - crossed)
    finally:
        await store.close()
    for label, samples in (
        ("rollback recorded", recorded),
        ("next turn on the old version", in_effect),
    ):
        line = f"canary past its error threshold → {label}"
        print(
            f"{line:<58} p50 {percentile(samples, 50) * 1e3:.1f} ms"
            f"  p99 {percentile(samples, 99) * 1e3:.1f} ms  ({len(samples)} canaries)",
            flush=True,
        )


async def _one_rollback(
    http: aiohttp.ClientSession, store: EventStore
) -> tuple[float, float, float]:
    """(threshold crossed, rollback recorded, first turn on the old version) as times."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    agent_id = (await post(http, "/api/v1/agents", {"name": name, "system_prompt": "v1"}))["data"][
        "id"
    ]
    await post(http, f"/api/v1/agents/{agent_id}/start")
    body = {
        "agent_id": agent_id,
        "version_label": "bad",
        "spec": {"name": name, "system_prompt": "[offline:fail]"},
        "stages": [{"percentage": 100, "duration_s": 600}],
        "error_threshold": 0.5,
        "min_samples": _MIN_SAMPLES,
    }
    deployment_id = (await post(http, "/api/v1/deployments", body))["data"]["id"]
    ends: list[Event] = []
    while True:
        async with http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}) as reply:
            answer = await reply.json()
        data = answer.get("data") or answer["error"]["details"]
        events = await store.read(session_stream(data["conversation_id"]))
        started = next(e for e in events if e.type == "turn.started")
        if started.data["deployment_id"] is None:
            break  # the runtime routes to the old definition again
        ends += [e for e in events if e.type == "turn.failed"]
    rolled_back = next(
        e
        for e in await store.read(f"deployment-{deployment_id}")
        if e.type == "deployment.rolled_back"
    )
    crossing = ends[_MIN_SAMPLES - 1]
    return crossing.time.timestamp(), rolled_back.time.timestamp(), started.time.timestamp()
