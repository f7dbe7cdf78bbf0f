"""The Contract Net and cluster group runs through the edge, on a stack of this module's own.

Agents answer through the runtime: a `cfp` by their `bidding` policy, an `accept-proposal`
or a `request` with a turn of the offline provider (`echo: …`). An agent with 0 instances
still bids (bidding needs no model call) but cannot work what it is awarded (no slot): it
answers `failure`, or runs out of the task's `timeout_seconds`; that is how a winner fails
here. A *silent* agent is one whose runtime does not run: the tests
that need one stop the runtime process (SIGSTOP) and play the agents that do answer by
sending their messages through the messaging service themselves.

The stack is this module's own: it kills and restarts the tasks process, and stops the
runtime for a while.
"""

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import nats
import pytest
from award_bids import BIDS
from award_bids import WINNERS
from e2e_support import new_agent
from tests_support import edge_client
from tests_support import eventually
from tests_support import stream_events

from parley.contracts import subjects
from parley.contracts.acl import AclMessage
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import SendMessage
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import Event
from parley.contracts.tasks import TASKS_INBOX
from parley.contracts.tasks import task_stream
from parley.devstack.stack import Stack

ENV = {"PARLEY_TASKS_ACK_WAIT": "2"}
GRACE_MS = 500
"""A round closes this long after its reply-by at the latest (the tasks service waits 250 ms)."""


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return ENV


@pytest.fixture
async def api(own_stack: Stack, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(
        own_stack, timeout=30, headers={"X-Parley-Namespace": namespace}
    ) as http:
        yield http


@contextlib.contextmanager
def runtime_stopped(stack: Stack) -> Iterator[None]:
    """No agent answers while inside (the runtime process is stopped, not killed)."""
    runtime = stack.processes["runtime"]
    runtime.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        runtime.send_signal(signal.SIGCONT)


async def agent(api: httpx.AsyncClient, **spec: Any) -> str:
    return await new_agent(api, "bidder", **spec)


def bidding(cost: float, time_s: float, confidence: float) -> dict[str, Any]:
    return {"bidding": {"base_cost": cost, "default_time_s": time_s, "confidence": confidence}}


async def create_task(api: httpx.AsyncClient, **body: Any) -> str:
    return created_task(await api.post("/api/v1/tasks", json={"name": "summarise", **body}))


def created_task(created: httpx.Response) -> str:
    """The id of the task ``created`` says was made, checked."""
    assert created.status_code == 201, created.text
    view = created.json()["data"]
    assert view["status"] == "created"
    assert created.headers["location"] == f"/api/v1/tasks/{view['task_id']}"
    return view["task_id"]


async def task_when_up(api: httpx.AsyncClient, **body: Any) -> str | None:
    """A task created, or None while the tasks service answers 503 (a restarted process
    recovers its rounds before it takes commands: "retry shortly")."""
    probe = await api.post("/api/v1/tasks", json={"name": "summarise", **body})
    return None if probe.status_code == 503 else created_task(probe)


async def wait_task(
    api: httpx.AsyncClient, task_id: str, *statuses: str, within: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        view = response.json()["data"]
        if view["status"] in statuses:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"task not {statuses} after {within}s: {view}")


async def event_types(stack: Stack, stream: str) -> list[str]:
    return [e.type for e in await stream_events(stack, stream)]


async def cfp_id(stack: Stack, namespace: str, task_id: str, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in await stream_events(stack, task_stream(namespace, task_id)):
            if event.type == "task.cfp_sent":
                return str(event.data["message_id"])
        await asyncio.sleep(0.05)
    raise AssertionError("no cfp sent")


async def say(
    stack: Stack,
    namespace: str,
    sender: str,
    performative: str,
    task_id: str,
    in_reply_to: str,
    content: Any,
) -> None:
    """Send a message as an agent would, through the messaging service."""
    command = SendMessage(
        namespace=namespace,
        message=OutgoingMessage(
            performative=Performative(performative),
            sender=sender,
            receivers=[f"task:{task_id}"],
            content=content,
            language="json",
            protocol="fipa-contract-net",
            conversation_id=task_id,
            in_reply_to=in_reply_to,
        ),
    )
    nc = await nats.connect(stack.nats_url)
    try:
        msg = await nc.request(
            subjects.cmd("messaging", "send"), msgspec.json.encode(command), timeout=5
        )
    finally:
        await nc.close()
    reply = msgspec.json.decode(msg.data)
    assert reply["ok"], reply


async def recorded(stack: Stack, stream: str, event_type: str, within: float = 10.0) -> Event:
    """The first ``event_type`` event of ``stream``, once it is stored."""

    async def look() -> Event | None:
        return next((e for e in await stream_events(stack, stream) if e.type == event_type), None)

    return await eventually(look, within=within)


async def round_closed(stack: Stack, namespace: str, task_id: str) -> None:
    """Return once the round's reply-by (as its cfp recorded it), and the grace after it, passed."""
    cfp = await recorded(stack, task_stream(namespace, task_id), "task.cfp_sent")
    closes = datetime.fromisoformat(cfp.data["reply_by"]) + timedelta(milliseconds=GRACE_MS)
    await asyncio.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds()))


async def inbox_drained(stack: Stack, within: float = 20.0) -> None:
    """Wait until the tasks' inbox consumer has nothing pending nor unacknowledged."""
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()

        async def drained() -> bool:
            for info in await js.consumers_info(subjects.INBOX_STREAM):
                if info.config.filter_subject == subjects.INBOX_TASKS:
                    return info.num_pending == 0 and info.num_ack_pending == 0
            return False

        await eventually(drained, within=within)
    finally:
        await nc.close()


def offer(cost: float, time_s: float = 1.0, confidence: float = 0.9) -> dict[str, float]:
    return {"cost": cost, "estimated_time_s": time_s, "confidence": confidence}


# --- the service's own paths -------------------------------------------------------------


async def test_a_task_is_created_read_and_listed_and_unknown_ones_are_404(api) -> None:
    task_id = await create_task(
        api, description="two lines", data={"text": "hello"}, timeout_seconds=30
    )
    view = (await api.get(f"/api/v1/tasks/{task_id}")).json()["data"]
    assert view["data"] == {"text": "hello"} and view["timeout_seconds"] == 30
    assert view["subtasks"] == [] and [e["type"] for e in view["events"]] == ["task.created"]
    listed = (await api.get("/api/v1/tasks", params={"status": "created"})).json()
    assert [t["task_id"] for t in listed["data"]] == [task_id]
    assert listed["pagination"]["total_count"] == 1
    for path in ("/api/v1/tasks/nope", "/api/v1/tasks/nope/distribute"):
        missing = await (api.get(path) if path.endswith("nope") else api.post(path))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "TASK_NOT_FOUND"
    bad = await api.post("/api/v1/tasks", json={"name": "x", "strategy": "best_bid"})
    assert bad.status_code == 422


async def test_tasks_are_listed_in_pages(api) -> None:
    ids = [await create_task(api, name=f"page-{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/tasks", params=params)).json()
        seen += [t["task_id"] for t in page["data"]]
        if not page["pagination"]["has_more"]:
            break
        cursor = page["pagination"]["next_cursor"]
    assert seen == ids


async def test_no_matching_agent_fails_the_task_with_the_reason(api) -> None:
    task_id = await create_task(api, requirements={"capabilities": ["no-one-has-this"]})
    response = await api.post(f"/api/v1/tasks/{task_id}/distribute", json={})
    assert response.status_code == 202, response.text
    view = await wait_task(api, task_id, "failed")
    assert "no-one-has-this" in view["failure_reason"]


async def test_an_unknown_or_stopped_participant_is_refused_before_anything_is_sent(api) -> None:
    task_id = await create_task(api, participants=["no-such-agent"])
    response = await api.post(f"/api/v1/tasks/{task_id}/distribute")
    assert response.status_code == 404 and response.json()["error"]["code"] == "AGENT_NOT_FOUND"
    created = await api.post("/api/v1/agents", json={"name": f"idle-{uuid.uuid4().hex[:6]}"})
    idle = created.json()["data"]["id"]
    task_id = await create_task(api, participants=[idle])
    response = await api.post(f"/api/v1/tasks/{task_id}/distribute")
    assert response.status_code == 409 and response.json()["error"]["code"] == "AGENT_NOT_RUNNING"
    assert (await api.get(f"/api/v1/tasks/{task_id}")).json()["data"]["status"] == "created"


async def test_cancel_ends_a_task_once(api) -> None:
    task_id = await create_task(api)
    cancelled = await api.post(f"/api/v1/tasks/{task_id}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    view = cancelled.json()["data"]
    assert view["status"] == "cancelled" and view["failure_reason"] == "not needed"
    again = await api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "INVALID_STATE_TRANSITION"


# --- rounds with agents answering (the runtime) ------------------------------------------


@pytest.mark.parametrize("strategy", list(WINNERS))
async def test_five_bidders_and_each_strategy_awards_its_known_winner(api, strategy) -> None:
    roles = {role: await agent(api, **bidding(*bid)) for role, bid in BIDS.items()}
    task_id = await create_task(api, description="say hello", participants=list(roles.values()))
    response = await api.post(
        f"/api/v1/tasks/{task_id}/distribute",
        json={"strategy": strategy, "max_wait_seconds": 10, "wait": True},
    )
    assert response.status_code == 200, response.text
    view = response.json()["data"]
    winner = roles[WINNERS[strategy]]
    assert view["status"] in ("awarded", "completed") and view["assigned_to"] == winner
    assert view["proposals_received"] == 5 and view["winning_bid"]["agent_id"] == winner
    statuses = {p["agent_id"]: (p["status"], p["reason"]) for p in view["proposals"]}
    assert statuses[winner] == ("accepted", None)
    assert all(s == ("rejected", "lost") for a, s in statuses.items() if a != winner)
    done = await wait_task(api, task_id, "completed", "failed")
    assert done["status"] == "completed" and done["result"], done


async def test_requirements_pick_the_candidates_by_capability(api) -> None:
    able = await agent(api, capabilities=["translate"], **bidding(1, 1, 0.9))
    await agent(api, capabilities=["summarise"], **bidding(0.1, 0.1, 1))
    task_id = await create_task(api, requirements={"capabilities": ["translate"]})
    response = await api.post(f"/api/v1/tasks/{task_id}/distribute", json={"wait": True})
    assert response.status_code == 200, response.text
    view = response.json()["data"]
    assert view["candidates"] == [able] and view["assigned_to"] == able


async def test_a_failing_winner_is_replaced_by_the_next_best_bid(api, own_stack, namespace) -> None:
    failing = await agent(api, instances=0, **bidding(1, 1, 0.9))  # bids, cannot work
    second = await agent(api, **bidding(2, 1, 0.9))
    # It answers `failure` (no slot), or — should its runtime hold the work instead — runs
    # out of the task's time: either way the next bid gets the task.
    task_id = await create_task(api, participants=[failing, second], timeout_seconds=3)
    await api.post(
        f"/api/v1/tasks/{task_id}/distribute", json={"strategy": "lowest_cost", "wait": True}
    )
    view = await wait_task(api, task_id, "completed", "failed", within=30)
    assert view["status"] == "completed" and view["assigned_to"] == second, view
    assert view["round"] == 2 and failing in view["failures"]
    awards = [
        e
        for e in await stream_events(own_stack, task_stream(namespace, task_id))
        if e.type == "task.awarded"
    ]
    assert [(e.data["agent_id"], e.data["round"]) for e in awards] == [(failing, 1), (second, 2)]


async def test_every_candidate_refusing_fails_the_task_with_their_reasons(api) -> None:
    refusers = [await agent(api, bidding={"refuse": True}) for _ in range(2)]
    task_id = await create_task(api, participants=refusers)
    response = await api.post(f"/api/v1/tasks/{task_id}/distribute", json={"wait": True})
    assert response.status_code == 200, response.text
    view = response.json()["data"]
    assert view["status"] == "failed" and view["failure_reason"] == "every candidate refused"
    assert set(view["refusals"]) == set(refusers)
    assert all("tendered work" in reason for reason in view["refusals"].values())


async def test_cancel_of_an_awarded_task_tells_the_contractor(api, own_stack, namespace) -> None:
    worker = await agent(api, **bidding(1, 1, 0.9))
    task_id = await create_task(api, participants=[worker])
    with runtime_stopped(own_stack):
        await api.post(f"/api/v1/tasks/{task_id}/distribute", json={"max_wait_seconds": 5})
        cfp = await cfp_id(own_stack, namespace, task_id)
        await say(
            own_stack,
            api.headers["X-Parley-Namespace"],
            worker,
            "propose",
            task_id,
            cfp,
            offer(1),
        )
        await wait_task(api, task_id, "awarded")
        cancelled = await api.post(f"/api/v1/tasks/{task_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
    events = await stream_events(own_stack, task_stream(namespace, task_id))
    assert events[-1].type == "task.cancelled" and events[-1].data["contractor"] == worker
    conversation = await stream_events(own_stack, conversation_stream(namespace, task_id))
    sent = [e.data["message"]["performative"] for e in conversation if e.type == "message.sent"]
    assert sent.count("cancel") == 1


async def test_a_silent_agent_leaves_the_round_to_the_deadline_and_a_late_bid_is_rejected(
    api, own_stack, namespace
) -> None:
    talker = await agent(api)
    silent = await agent(api)
    task_id = await create_task(api, participants=[talker, silent])
    with runtime_stopped(own_stack):
        started = time.monotonic()
        await api.post(f"/api/v1/tasks/{task_id}/distribute", json={"max_wait_seconds": 1.5})
        cfp = await cfp_id(own_stack, namespace, task_id)
        await say(own_stack, namespace, talker, "propose", task_id, cfp, offer(3))
        view = await wait_task(api, task_id, "awarded", "failed")
        assert time.monotonic() - started >= 1.5  # waited for the silent one
        assert view["assigned_to"] == talker and silent not in view["refusals"]
        # A proposal the messaging service took before reply-by but delivered after the round
        # closed (here: put on the tasks inbox directly, as a slow delivery would).
        late = AclMessage(
            message_id=uuid.uuid4().hex,
            performative=Performative.PROPOSE,
            sender=silent,
            receivers=[f"task:{task_id}"],
            conversation_id=task_id,
            content=offer(0.5),
            in_reply_to=cfp,
            namespace=namespace,
            sent_at=datetime.now(UTC),
        )
        nc = await nats.connect(own_stack.nats_url)
        try:
            await nc.jetstream().publish(TASKS_INBOX, msgspec.json.encode(late))
        finally:
            await nc.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            view = (await api.get(f"/api/v1/tasks/{task_id}")).json()["data"]
            if any(p["agent_id"] == silent for p in view["proposals"]) or "task.rejected" in [
                e["type"] for e in view["events"]
            ]:
                break
            await asyncio.sleep(0.05)
    rejected = [
        e
        for e in await stream_events(own_stack, task_stream(namespace, task_id))
        if e.type == "task.rejected"
    ]
    assert [(e.data["agent_id"], e.data["reason"]) for e in rejected] == [(silent, "late")]
    assert view["assigned_to"] == talker


async def test_a_tasks_process_killed_mid_round_ends_the_round_exactly_once(
    api, own_stack, namespace
) -> None:
    first, second, silent = [await agent(api) for _ in range(3)]
    task_id = await create_task(api, participants=[first, second, silent])
    with runtime_stopped(own_stack):
        await api.post(f"/api/v1/tasks/{task_id}/distribute", json={"max_wait_seconds": 2})
        cfp = await cfp_id(own_stack, namespace, task_id)
        await say(own_stack, namespace, first, "propose", task_id, cfp, offer(5))
        await recorded(own_stack, task_stream(namespace, task_id), "task.proposal_received")
        own_stack.stop_process("tasks", signal.SIGKILL)
        # While it is down: another bid (waits in the inbox) and the deadline passes.
        await say(own_stack, namespace, second, "propose", task_id, cfp, offer(1))
        await round_closed(own_stack, namespace, task_id)
        own_stack.start_process("tasks")
        view = await wait_task(api, task_id, "awarded", "failed", within=30)
        # Every answer (and redelivery) the inbox held has been taken and acknowledged, and
        # the restarted process has followed the store past the award and run a timer since.
        await inbox_drained(own_stack)
        probe = await eventually(lambda: task_when_up(api, participants=[silent]), within=30)
        await api.post(f"/api/v1/tasks/{probe}/distribute", json={"max_wait_seconds": 0.2})
        await wait_task(api, probe, "failed")
    kinds = await event_types(own_stack, task_stream(namespace, task_id))
    assert kinds.count("task.awarded") == 1 and "task.failed" not in kinds, kinds
    assert view["assigned_to"] in (first, second)
    assert kinds.count("task.proposal_received") + kinds.count("task.rejected") >= 2


# --- group runs ---------------------------------------------------------------------------


async def cluster(api: httpx.AsyncClient, strategy: str = "parallel") -> tuple[str, list[str]]:
    name = f"g-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {
            "agents": [{"name": "first"}, {"name": "second"}, {"name": "third"}],
            "strategy": strategy,
        },
    }
    created = await api.post("/api/v1/clusters", json=manifest)
    assert created.status_code == 201, created.text
    return name, created.json()["data"]["agent_ids"]


async def run(api: httpx.AsyncClient, name: str, within: float = 30.0, **body: Any) -> dict:
    started = await api.post(f"/api/v1/clusters/{name}/runs", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["data"]["run_id"]
    assert started.headers["location"] == f"/api/v1/clusters/{name}/runs/{run_id}"
    deadline = time.monotonic() + within
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = (await api.get(f"/api/v1/clusters/{name}/runs/{run_id}")).json()["data"]
        if view["status"] != "running":
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"run still running after {within}s: {view}")


async def test_a_parallel_run_collects_every_agents_output(api) -> None:
    name, agents = await cluster(api)
    view = await run(api, name, input="hello")
    assert view["status"] == "completed", view
    assert view["strategy"] == "parallel" and set(view["result"]) == set(agents)
    assert all(output.startswith("echo: hello") for output in view["result"].values())


async def test_a_pipeline_run_feeds_each_output_to_the_next_agent(api) -> None:
    name, agents = await cluster(api, strategy="pipeline")
    view = await run(api, name, input="hi")
    assert view["status"] == "completed", view
    assert [r["agent_id"] for r in view["results"]] == agents
    assert view["result"].startswith("echo: echo: echo: hi")


async def test_a_map_reduce_run_splits_the_list_and_reduces(api) -> None:
    name, agents = await cluster(api)
    view = await run(api, name, input=["a", "b", "c", "d"], strategy="map-reduce")
    assert view["status"] == "completed", view
    stages = [(r["agent_id"], r["stage"], r["input"]) for r in view["results"]]
    assert stages[:2] == [(agents[0], "map", ["a", "b"]), (agents[1], "map", ["c", "d"])]
    assert stages[2][:2] == (agents[2], "reduce") and len(stages[2][2]) == 2
    assert view["result"].startswith("echo: ")


async def test_a_race_run_takes_the_first_answer_and_cancels_the_rest(api) -> None:
    name, agents = await cluster(api)
    view = await run(api, name, input="go", strategy="race")
    assert view["status"] == "completed", view
    assert view["winner"] in agents and view["result"].startswith("echo: go")
    assert view["winner"] not in view["cancelled"]
    assert set(view["cancelled"]) <= set(agents) - {view["winner"]}


async def test_runs_of_unknown_clusters_and_too_few_agents_are_refused(api) -> None:
    missing = await api.post("/api/v1/clusters/nope/runs", json={"input": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CLUSTER_NOT_FOUND"
    name = f"g-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": {"agents": [{"name": "only"}]},
    }
    assert (await api.post("/api/v1/clusters", json=manifest)).status_code == 201
    refused = await api.post(
        f"/api/v1/clusters/{name}/runs", json={"input": "x", "strategy": "race"}
    )
    assert refused.status_code == 422 and "at least 2" in refused.json()["error"]["message"]
    unknown = await api.get(f"/api/v1/clusters/{name}/runs/nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RUN_NOT_FOUND"


async def test_a_pipeline_past_its_budget_fails_with_the_reason(api) -> None:
    name, _ = await cluster(api, strategy="pipeline")
    # each offline turn reports its tokens; the echoes grow along the pipeline
    view = await run(api, name, input="one two three four", budget={"max_tokens": 12})
    assert view["status"] == "failed", view
    assert "budget exceeded" in view["error"]
    completed = [r for r in view["results"] if r["status"] == "completed"]
    assert 1 <= len(completed) < 3  # it stopped before the last agent
