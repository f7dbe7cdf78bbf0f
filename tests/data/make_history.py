"""Record a stored history and the views the edge serves for it.

Writes, next to this file:

- ``history-v1.ndjson``: every event of the store, read from position 0, one JSON
  :class:`~parley.contracts.envelope.Event` a line, in position order;
- ``views-v1.json``: ``{"<namespace> <path>": {"status", "body"}}`` for every GET route of
  the edge over that history (agents, executions, output, metrics, logs, personas, clusters,
  group runs, sessions with their history, messages, tasks), with per-request values
  (``request_id``, ``trace_id``) normalised (see ``tests_support.normalise``).

``tests/e2e/test_stored_history.py`` appends the recorded events into a fresh store exactly
as recorded, starts the stack on it and checks every view is served identically: events
written with the code of the day they were recorded, folded with today's.

The workload runs against the real stack (processes, as the e2e tests start it): agents
created, updated, started, paused, stopped and deleted; a persona an agent names; a cluster
and a group run; chat turns with tool calls and an ad-hoc session; a webhook execution; an
ACL request answered with an inform; a Contract Net task awarded and completed; a custom
event. It ends quiescent (every execution, task and run finished) so that a stack started on
the history has nothing left to do.

Regenerate only when the stored shapes change on purpose (the file name's version says
which history it is); run from the repository root::

    uv run python tests/data/make_history.py
"""

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests_support

from tests_support import capture_views  # noqa: E402
from tests_support import export_events  # noqa: E402

from parley.devstack.stack import Stack  # noqa: E402

NAMESPACE = "history"
HISTORY = HERE / "history-v1.ndjson"
VIEWS = HERE / "views-v1.json"


def _data(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json()["data"]


def _call(tool: str, **arguments: Any) -> str:
    return f"call {tool}({json.dumps(arguments)})"


async def _wait(client: httpx.AsyncClient, path: str, key: str, *done: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = await client.get(path)
        if response.status_code == 200 and response.json()["data"][key] in done:
            return dict(response.json()["data"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} not {done} in time")


async def workload(client: httpx.AsyncClient) -> dict[str, list[str]]:
    """Drive the representative workload; the ids it made, by kind."""
    made: dict[str, list[str]] = {"runs": []}

    async def agent(name: str, *actions: str, **spec: Any) -> str:
        agent_id = str(
            _data(await client.post("/api/v1/agents", json={"name": name, **spec}), 201)["id"]
        )
        for action in actions:
            _data(await client.post(f"/api/v1/agents/{agent_id}/{action}"), 200)
        return agent_id

    # personas and agents through their whole life
    _data(
        await client.post(
            "/api/v1/personas",
            json={
                "name": "archivist",
                "description": "Keeps records",
                "content": "Be exact.",
                "tags": ["history"],
            },
        ),
        201,
    )
    keeper = await agent("keeper", persona="archivist", capabilities=["records"])
    _data(
        await client.patch(
            f"/api/v1/agents/{keeper}",
            json={"description": "keeps the records"},
            headers={"If-Match": '"1"'},
        ),
        200,
    )
    for action in ("start", "pause"):
        _data(await client.post(f"/api/v1/agents/{keeper}/{action}"), 200)
    await agent("stopper", "start", "stop")
    doomed = await agent("doomed")
    _data(await client.delete(f"/api/v1/agents/{doomed}"), 200)

    # chat turns with tool calls, on one conversation; an ad-hoc session
    tooler = await agent("tooler", "start", tools=[{"name": "calculator"}])
    first = _data(
        await client.post(
            f"/api/v1/agents/{tooler}/chat",
            json={"message": _call("calculator", expression="6*7")},
            timeout=30,
        ),
        200,
    )
    _data(
        await client.post(
            f"/api/v1/agents/{tooler}/chat",
            json={"message": "and again", "conversation_id": first["conversation_id"]},
            timeout=30,
        ),
        200,
    )
    session = _data(
        await client.post(
            "/api/v1/sessions", json={"settings": {"model": "offline-1"}, "title": "scratch"}
        ),
        201,
    )
    _data(
        await client.patch(f"/api/v1/sessions/{session['id']}", json={"system_prompt": "brief"}),
        200,
    )
    _data(
        await client.post(
            f"/api/v1/sessions/{session['id']}/chat", json={"message": "hello"}, timeout=30
        ),
        200,
    )

    # a webhook execution with a tool call
    execution = _data(
        await client.post(
            f"/api/v1/agents/{tooler}/webhook",
            json={"input_data": {"message": _call("calculator", expression="1+2")}},
        ),
        202,
    )["execution_id"]
    await _wait(
        client, f"/api/v1/agents/{tooler}/executions/{execution}", "status", "completed", "failed"
    )

    # an ACL request answered with an inform
    responder = await agent("responder", "start")
    reply = _data(
        await client.post(
            "/api/v1/messages",
            json={
                "performative": "request",
                "sender": "user:alice",
                "receivers": [responder],
                "content": "hello",
                "wait": 10,
            },
            timeout=30,
        ),
        200,
    )
    assert reply["reply"]["performative"] == "inform", reply

    # a Contract Net task awarded and completed
    bids = {"base_cost": 1, "default_time_s": 1, "confidence": 0.9}
    cheap = await agent("cheap", "start", bidding=bids)
    dear = await agent("dear", "start", bidding={**bids, "base_cost": 5})
    task = _data(
        await client.post(
            "/api/v1/tasks",
            json={"name": "summarise", "description": "say hello", "participants": [cheap, dear]},
        ),
        201,
    )["task_id"]
    _data(
        await client.post(
            f"/api/v1/tasks/{task}/distribute",
            json={"strategy": "lowest_cost", "max_wait_seconds": 10, "wait": True},
        ),
        200,
    )
    done = await _wait(client, f"/api/v1/tasks/{task}", "status", "completed", "failed")
    assert done["status"] == "completed" and done["assigned_to"] == cheap, done

    # a cluster and a group run
    cluster = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": "crew", "labels": {"team": "history"}},
        "spec": {"agents": [{"name": "first"}, {"name": "second"}], "strategy": "parallel"},
    }
    _data(await client.post("/api/v1/clusters", json=cluster), 201)
    run = _data(await client.post("/api/v1/clusters/crew/runs", json={"input": "hi"}), 202)
    made["runs"].append(run["run_id"])
    ran = await _wait(
        client, f"/api/v1/clusters/crew/runs/{run['run_id']}", "status", "completed", "failed"
    )
    assert ran["status"] == "completed", ran

    # a custom event
    _data(
        await client.post(
            "/api/v1/events",
            json={"type": "history.noted", "subject": "ledger", "data": {"page": 1}},
        ),
        201,
    )
    made["agents"] = [keeper, doomed, tooler, responder, cheap, dear]
    return made


async def quiescent(client: httpx.AsyncClient, nats_url: str, calm: float = 3.0) -> None:
    """Wait until the store has taken no event for ``calm`` seconds."""
    from parley.eventstore.factory import open_store

    store = await open_store(backend="jetstream", nats_url=nats_url)
    try:
        last, since = -1, time.monotonic()
        while time.monotonic() - since < calm:
            now = await store.last_position()
            if now != last:
                last, since = now, time.monotonic()
            await asyncio.sleep(0.2)
    finally:
        await store.close()


async def view_paths(client: httpx.AsyncClient, made: dict[str, list[str]]) -> list[str]:
    """Every GET path whose view the history decides."""
    headers = {"X-Parley-Namespace": NAMESPACE}

    async def listed(path: str, key: str) -> list[str]:
        response = await client.get(path, params={"limit": 100}, headers=headers)
        if response.status_code == 404:
            return []  # a deleted agent's
        page = response.json()
        assert not page["pagination"]["has_more"], path
        return [str(item[key]) for item in page["data"]]

    paths = [
        "/api/v1/agents?limit=100",
        "/api/v1/personas",
        "/api/v1/clusters",
        "/api/v1/sessions?limit=100",
        "/api/v1/messages?limit=100",
        "/api/v1/tasks?limit=100",
    ]
    agents = await listed("/api/v1/agents", "id")
    for agent_id in sorted({*agents, *made["agents"]}):  # the deleted one too: a 404
        base = f"/api/v1/agents/{agent_id}"
        paths += [
            base,
            f"{base}/executions?limit=100",
            f"{base}/output",
            f"/api/v1/metrics/agents/{agent_id}",
            f"{base}/logs",
        ]
        for execution in await listed(f"{base}/executions", "id"):
            paths.append(f"{base}/executions/{execution}")
    paths += [f"/api/v1/personas/{name}" for name in await listed("/api/v1/personas", "name")]
    for name in await listed("/api/v1/clusters", "name"):
        paths.append(f"/api/v1/clusters/{name}")
    paths += [f"/api/v1/clusters/crew/runs/{run}" for run in made["runs"]]
    paths += [f"/api/v1/sessions/{s}" for s in await listed("/api/v1/sessions", "id")]
    paths += [f"/api/v1/messages/{m}" for m in await listed("/api/v1/messages", "message_id")]
    paths += [f"/api/v1/tasks/{t}" for t in await listed("/api/v1/tasks", "task_id")]
    return paths


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="parley-history-") as state:
        stack = Stack(Path(state))
        await asyncio.to_thread(stack.start)
        try:
            async with httpx.AsyncClient(
                base_url=stack.edge_url, timeout=30, headers={"X-Parley-Namespace": NAMESPACE}
            ) as client:
                made = await workload(client)
                await quiescent(client, stack.nats_url)
                paths = await view_paths(client, made)
                views = await capture_views(client, [(NAMESPACE, p) for p in paths])
                events = await export_events(stack.nats_url)
        finally:
            await asyncio.to_thread(stack.stop)
    HISTORY.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    VIEWS.write_text(json.dumps(views, indent=1, sort_keys=True) + "\n")
    print(f"{len(events)} events -> {HISTORY.name}; {len(views)} views -> {VIEWS.name}")


if __name__ == "__main__":
    asyncio.run(main())
