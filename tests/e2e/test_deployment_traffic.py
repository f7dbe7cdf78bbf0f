"""A deployment's traffic really splits, and a bad new version rolls back by itself.

Through the real stack on the offline provider: each chat turn of an agent under a canary
runs on the old or the new definition by the stage's weights (the offline provider echoes,
so the answers do not tell; the versions recorded on the turns' events do), a conversation
keeps the version it started on, and a new prompt that fails (``[offline:fail]``) is rolled
back by the deployment service from the failures it measured, with the figures. Each test
runs in a namespace of its own (its hundreds of conversations stay out of the others' lists).
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from e2e_support import deployment_in
from e2e_support import deployment_view
from e2e_support import new_agent

from parley.aggregates.deployment import bucket
from parley.contracts.runtime import execution_stream
from parley.contracts.runtime import session_stream
from parley.devstack.stack import Stack
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store

DEPLOYMENTS = "/api/v1/deployments"
AT_10, AT_50 = 400, 800
"""New conversations measured at the 10 % and 50 % stages."""
TOLERANCE = 9.0
"""Percentage points the measured share may be off the stage's. Which version a new
conversation lands on is fixed by its id's hash (:func:`bucket`), checked exactly per
conversation; the share is a draw over random ids (binomial), and 9 points is beyond 4.5
standard deviations at 50 % of 800 (1.77) and 6 at 10 % of 400 (1.5): a test that fails
only when the split is really off, not one run in two hundred by chance."""


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    """The stack's event store, to read the turns' recorded events."""
    opened = await open_store(nats_url=stack.nats_url)
    yield opened
    await opened.close()


async def _chat(
    http: httpx.AsyncClient, agent_id: str, conversation: str | None = None
) -> dict[str, Any]:
    body = {"message": "hello", **({"conversation_id": conversation} if conversation else {})}
    for _ in range(50):
        answer = await http.post(f"/api/v1/agents/{agent_id}/chat", json=body, timeout=30)
        if answer.status_code != 429:  # the edge's model rate limit: wait and send again
            break
        await asyncio.sleep(float(answer.headers.get("retry-after", "0.2")))
    body_json: dict[str, Any] = answer.json()
    if answer.status_code == 200:
        return dict(body_json["data"])
    details: dict[str, Any] = body_json["error"]["details"]  # a failed turn
    assert answer.status_code == 502, answer.text
    return details


async def _conversations(
    http: httpx.AsyncClient, agent_id: str, count: int, previous: list[str] | None = None
) -> list[str]:
    """``count`` new conversations of one turn each (or a next turn in ``previous``)."""
    gate = asyncio.Semaphore(16)

    async def one(conversation: str | None) -> str:
        async with gate:
            return str((await _chat(http, agent_id, conversation))["conversation_id"])

    targets: list[str | None] = list(previous) if previous else [None] * count
    return list(await asyncio.gather(*(one(c) for c in targets)))


async def _turns(store: EventStore, conversation: str) -> list[dict[str, Any]]:
    """The recorded starts of the conversation's turns, oldest first."""
    events = await store.read(session_stream(conversation))
    return [e.data for e in events if e.type == "turn.started"]


async def _versions(store: EventStore, conversations: list[str]) -> list[list[Any]]:
    """Per conversation, the deployment each of its turns ran the new definition of."""
    found = await asyncio.gather(*(_turns(store, c) for c in conversations))
    return [[t["deployment_id"] for t in turns] for turns in found]


def _drawn(conversations: list[str], versions: list[list[Any]], percentage: int) -> list[str]:
    """The conversations whose first turn did not land where their hash puts them."""
    return [
        c
        for c, turns in zip(conversations, versions, strict=True)
        if (turns[0] is not None) != (bucket(c) < percentage)
    ]


def _share(versions: list[list[Any]], deployment_id: str) -> float:
    on_new = sum(1 for turns in versions if turns[0] == deployment_id)
    return 100.0 * on_new / len(versions)


async def _act(http: httpx.AsyncClient, deployment_id: str, action: str) -> dict[str, Any]:
    answer = await http.post(f"{DEPLOYMENTS}/{deployment_id}/{action}", json={})
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()["data"]
    return view


async def _seen(http: httpx.AsyncClient) -> None:
    """Make every later chat see what the store holds now: a write the edge's agents view
    waits for, whose position the chats then carry for the runtime to reach."""
    await new_agent(http, "barrier", actions=())


async def _deploy(http: httpx.AsyncClient, agent_id: str, prompt: str, **body: Any) -> str:
    name = (await http.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]["name"]
    request = {
        "agent_id": agent_id,
        "version_label": "prompt-v2",
        "spec": {"name": name, "system_prompt": prompt},
        "strategy": "canary",
        **body,
    }
    answer = await http.post(DEPLOYMENTS, json=request)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["data"]["id"])


async def test_a_canary_splits_turns_by_its_weights_and_keeps_each_conversation_on_its_version(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    agent_id = await new_agent(api, "traffic", system_prompt="Answer briefly.")
    stages = [{"percentage": 10, "duration_s": 2}, {"percentage": 50, "duration_s": 2}]
    deployment_id = await _deploy(
        api, agent_id, "Answer in one sentence.", stages=[*stages, {"percentage": 100}]
    )
    # each stage is measured paused (the clock stops, the weights hold), then resumed
    await _act(api, deployment_id, "pause")
    at_10 = await _conversations(api, agent_id, AT_10)
    await _act(api, deployment_id, "resume")
    await deployment_in(api, deployment_id, "rolling_out", stage=1)
    await _act(api, deployment_id, "pause")
    at_50 = await _conversations(api, agent_id, AT_50)
    await _conversations(api, agent_id, 0, previous=at_10[:100])  # a second turn each
    await _act(api, deployment_id, "resume")
    done = await deployment_in(api, deployment_id, "completed")
    await _seen(api)

    first, second = await _versions(store, at_10), await _versions(store, at_50)
    assert {v for turns in first + second for v in turns} == {None, deployment_id}
    assert _drawn(at_10, first, 10) == [] and _drawn(at_50, second, 50) == []
    assert abs(_share(first, deployment_id) - 10) <= TOLERANCE, _share(first, deployment_id)
    assert abs(_share(second, deployment_id) - 50) <= TOLERANCE, _share(second, deployment_id)
    # at 50 % a conversation that started on the old version at 10 % stays on it
    assert all(turns[1:] == turns[:1] for turns in first[:100])
    assert any(turns[0] is None for turns in first[:100])

    # the schedule: each stage lasted its time (paused time not counted), then it promoted
    assert [s["percentage"] for s in done["stages"]] == [10, 50, 100]
    assert all(s["started_at"] and s["ended_at"] for s in done["stages"][:2])
    # once promoted, every turn (old conversations too) runs the new definition
    after = await _conversations(api, agent_id, 0, previous=at_10[:20])
    versions = await _versions(store, after)
    labels = [t["version_label"] for c in after for t in (await _turns(store, c))[2:]]
    assert all(turns[2] is None for turns in versions)  # no deployment active any more
    assert set(labels) == {"prompt-v2"}
    starts = [(await _turns(store, c))[0] for c in at_50]
    assert {(t["agent_version"], t["version_label"], t["deployment_id"]) for t in starts} == {
        (1, None, None),
        (2, "prompt-v2", deployment_id),
    }


async def test_a_canary_whose_new_prompt_fails_rolls_back_by_itself_with_the_figures(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    agent_id = await new_agent(api, "failing", system_prompt="Answer briefly.")
    deployment_id = await _deploy(
        api,
        agent_id,
        "Answer in one sentence. [offline:fail]",
        stages=[{"percentage": 50, "duration_s": 60}, {"percentage": 100}],
        error_threshold=0.2,
        min_samples=10,
    )
    conversations: list[str] = []
    async with asyncio.timeout(60):
        while (await deployment_view(api, deployment_id))["status"] == "rolling_out":
            conversations += await _conversations(api, agent_id, 10)
    view = await deployment_view(api, deployment_id)
    assert view["status"] == "rolled_back", view
    assert view["stages"][1]["started_at"] is None  # before its second stage
    health = view["health"]
    assert health["samples"] >= 10 and health["errors"] / health["samples"] > 0.2, health
    assert "above the threshold" in view["reason"]

    rolled_back = len(conversations)
    await _seen(api)
    conversations += await _conversations(api, agent_id, 40)
    again = await _conversations(api, agent_id, 0, previous=conversations)
    found = await asyncio.gather(*(_turns(store, c) for c in again))
    later = [turns[-1] for turns in found] + [turns[0] for turns in found[rolled_back:]]
    assert later and all(t["deployment_id"] is None for t in later)
    failed_before = sum(1 for turns in found[:rolled_back] if turns[0]["deployment_id"])
    assert failed_before >= 10


async def test_turns_record_the_version_they_ran_without_a_deployment(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    agent_id = await new_agent(api, "plain", system_prompt="v1")
    (conversation,) = await _conversations(api, agent_id, 1)
    patched = await api.patch(f"/api/v1/agents/{agent_id}", json={"system_prompt": "v2"})
    assert patched.status_code == 200, patched.text
    await _conversations(api, agent_id, 0, previous=[conversation])
    turns = await _turns(store, conversation)
    assert [(t["agent_version"], t["deployment_id"]) for t in turns] == [(1, None), (2, None)]


async def _execution(http: httpx.AsyncClient, store: EventStore, agent_id: str) -> list[Any]:
    """Run a webhook execution to its end; its start's and end's version fields."""
    answer = await http.post(
        f"/api/v1/agents/{agent_id}/webhook", json={"input_data": {"message": "hi"}}
    )
    assert answer.status_code == 202, answer.text
    stream = execution_stream(answer.json()["data"]["execution_id"])
    async with asyncio.timeout(30):
        while True:
            events = await store.read(stream)
            if events and events[-1].type == "execution.completed":
                break
            await asyncio.sleep(0.05)
    return [
        (e.data["agent_version"], e.data.get("version_label"), e.data.get("deployment_id"))
        for e in events
        if e.type in ("execution.started", "execution.completed")
    ]


async def test_an_execution_records_the_version_its_deployment_chose_and_metrics_split_by_it(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    agent_id = await new_agent(api, "exec", system_prompt="v1")
    everything = [{"percentage": 100, "duration_s": 600}]
    deployment_id = await _deploy(api, agent_id, "v2", stages=everything)
    on_new = (2, "prompt-v2", deployment_id)
    assert await _execution(api, store, agent_id) == [on_new, on_new]
    await _act(api, deployment_id, "rollback")
    assert await _execution(api, store, agent_id) == [(1, None, None), (1, None, None)]
    # the agent's metrics and logs, by version
    path = f"/api/v1/metrics/agents/{agent_id}"
    async with asyncio.timeout(15):
        while True:  # the edge's view follows the store
            if (await api.get(path)).json()["data"]["executions"] == 2:
                break
            await asyncio.sleep(0.05)
    by_version = [(await api.get(path, params={"version": n})).json()["data"] for n in (1, 2)]
    assert [(m["agent_version"], m["executions"], m["succeeded"]) for m in by_version] == [
        (1, 1, 1),
        (2, 1, 1),
    ]
    lines = await api.get(f"/api/v1/agents/{agent_id}/logs", params={"version": 2})
    assert lines.status_code == 200, lines.text
    found = lines.json()["data"]
    assert {line["agent_version"] for line in found} == {2}
    assert {line["event_type"] for line in found} >= {"execution.started", "execution.completed"}
    bad = await api.get(f"/api/v1/agents/{agent_id}/logs", params={"version": 0})
    assert bad.status_code == 422, bad.text
