"""Agent versions and deployments through the real stack (nats-server, services, edge).

Every definition change of an agent is a numbered version readable back, with a field-level
diff; a deployment rolls a new definition out (immediately, by canary stages, by rolling
batches, blue-green; a cluster's template through its agents), can be promoted, paused,
resumed or rolled back, and only one runs per agent at a time. The deployment process can be
killed mid-canary: another start resumes the rollout at its stage, with exactly one event per
transition.
"""

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from e2e_support import body_of
from e2e_support import deployment_in
from httpx_sse import ServerSentEvent
from httpx_sse import aconnect_sse
from tests_support import eventually

from parley.aggregates import deployment
from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.contracts.deployments import Health
from parley.contracts.deployments import deployment_stream
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store
from parley.eventstore.repository import Repository

DEPLOYMENTS = "/api/v1/deployments"


async def _agent(http: httpx.AsyncClient, **spec: Any) -> str:
    body = {"name": f"dep-{uuid.uuid4().hex[:8]}", "system_prompt": "v1", **spec}
    created = await http.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


async def test_every_definition_change_is_a_numbered_version_with_a_diff(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client, labels={"team": "a"})
    for patch in (
        {"system_prompt": "v2"},
        {"params": {"temperature": 0.2}, "labels": {"team": "b"}},
    ):
        patched = await client.patch(f"/api/v1/agents/{agent_id}", json=patch)
        assert patched.status_code == 200, patched.text
    await client.post(f"/api/v1/agents/{agent_id}/start")  # not a definition change

    listed = await client.get(f"/api/v1/agents/{agent_id}/versions")
    assert listed.status_code == 200, listed.text
    found = listed.json()["data"]
    assert [v["version"] for v in found] == [1, 2, 3]
    assert found[1]["changed"] == ["system_prompt"]
    assert found[2]["changed"] == ["labels", "params"]

    second = await client.get(f"/api/v1/agents/{agent_id}/versions/2")
    assert second.status_code == 200
    assert second.json()["data"]["spec"]["system_prompt"] == "v2"
    assert second.json()["data"]["spec"]["labels"] == {"team": "a"}

    compared = await client.get(f"/api/v1/agents/{agent_id}/versions/1/diff/3")
    assert compared.status_code == 200, compared.text
    changes = {c["field"]: (c["before"], c["after"]) for c in compared.json()["data"]["changes"]}
    assert changes["system_prompt"] == ("v1", "v2")
    assert changes["labels.team"] == ("a", "b")
    assert changes["params.temperature"][1] == 0.2
    assert "name" not in changes

    missing = await client.get(f"/api/v1/agents/{agent_id}/versions/9")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    unknown = await client.get(f"/api/v1/agents/{uuid.uuid4()}/versions")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "AGENT_NOT_FOUND"


async def _deploy(http: httpx.AsyncClient, agent_id: str, **body: Any) -> httpx.Response:
    name = (await http.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]["name"]
    request = {
        "agent_id": agent_id,
        "version_label": "v2",
        "spec": {"name": name, "system_prompt": "v2"},
        **body,
    }
    return await http.post(DEPLOYMENTS, json=request)


async def _started(http: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await _deploy(http, agent_id, **body)
    assert response.status_code == 202, response.text
    view: dict[str, Any] = response.json()["data"]
    assert response.headers["location"] == f"{DEPLOYMENTS}/{view['id']}"
    return view


async def _events(
    http: httpx.AsyncClient, deployment_id: str, last: str
) -> list[tuple[str, dict[str, Any]]]:
    """The deployment's events (type, data) over SSE, from its first up to ``last``."""
    params = {"stream": f"deployment-{deployment_id}", "from_position": "0"}
    found: list[tuple[str, dict[str, Any]]] = []
    timeout = httpx.Timeout(10, read=30)
    async with aconnect_sse(http, "GET", "/api/v1/events", params=params, timeout=timeout) as sse:
        events: AsyncIterator[ServerSentEvent] = sse.aiter_sse()
        async with asyncio.timeout(20):
            while not found or found[-1][0] != last:
                event = await anext(events)
                found.append((event.event, json.loads(event.data)["data"]))
    return found


async def _event_types(http: httpx.AsyncClient, deployment_id: str, last: str) -> list[str]:
    """The deployment's event types over SSE, from its first up to ``last``."""
    return [kind for kind, _ in await _events(http, deployment_id, last)]


async def _prompt(http: httpx.AsyncClient, agent_id: str) -> str:
    return str(
        (await http.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]["system_prompt"]
    )


CANARY = [
    {"percentage": 10, "duration_s": 1.5},
    {"percentage": 50, "duration_s": 1.5},
    {"percentage": 100},
]
CANARY_EVENTS = [
    "deployment.created",
    *["deployment.stage_started"] * len(CANARY),
    "deployment.promoted",
    "deployment.completed",
]
"""What a :data:`CANARY` deployment records, in order, once it completed."""
LONG = [{"percentage": 10, "duration_s": 600}, {"percentage": 100}]


async def test_an_immediate_deployment_makes_the_new_definition_the_next_version(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    view = await _started(client, agent_id, strategy="immediate")
    done = await deployment_in(client, view["id"], "completed")
    assert (done["percentage"], done["from_version"]) == (100, 1)
    assert await _prompt(client, agent_id) == "v2"
    versions = (await client.get(f"/api/v1/agents/{agent_id}/versions")).json()["data"]
    assert [v["spec"]["system_prompt"] for v in versions] == ["v1", "v2"]
    assert done["agent_version"] == versions[-1]["stream_version"]
    types = await _event_types(client, view["id"], "deployment.completed")
    assert types == ["deployment.created", "deployment.promoted", "deployment.completed"]


async def test_a_canary_goes_through_its_stages_on_schedule_and_promotes(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    view = await _started(client, agent_id, stages=CANARY)
    assert (view["status"], view["current_stage"], view["percentage"]) == ("rolling_out", 0, 10)
    assert await _prompt(client, agent_id) == "v1"  # nothing applied while it rolls out
    done = await deployment_in(client, view["id"], "completed")
    assert await _prompt(client, agent_id) == "v2"
    starts = [s["started_at"] for s in done["stages"]]
    assert all(starts) and starts == sorted(starts)
    assert [s["percentage"] for s in done["stages"]] == [10, 50, 100]
    types = await _event_types(client, view["id"], "deployment.completed")
    assert types == CANARY_EVENTS
    listed = await client.get(DEPLOYMENTS, params={"agent_id": agent_id})
    assert [d["id"] for d in listed.json()["data"]] == [view["id"]]


async def test_pause_resume_rollback_and_promote_by_hand(client: httpx.AsyncClient) -> None:
    agent_id = await _agent(client)
    first = await _started(client, agent_id, stages=LONG)
    paused = await client.post(f"{DEPLOYMENTS}/{first['id']}/pause", json={"reason": "look"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["data"]["status"] == "paused"
    resumed = await client.post(f"{DEPLOYMENTS}/{first['id']}/resume")
    assert resumed.json()["data"]["status"] == "rolling_out"
    back = await client.post(f"{DEPLOYMENTS}/{first['id']}/rollback", json={"reason": "worse"})
    assert back.status_code == 200, back.text
    assert (back.json()["data"]["status"], back.json()["data"]["reason"]) == (
        "rolled_back",
        "worse",
    )
    assert await _prompt(client, agent_id) == "v1"
    again = await client.post(f"{DEPLOYMENTS}/{first['id']}/promote")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "INVALID_STATE_TRANSITION"

    second = await _started(client, agent_id, stages=LONG)  # the slot is free again
    promoted = await client.post(f"{DEPLOYMENTS}/{second['id']}/promote")
    assert promoted.status_code == 200, promoted.text
    await deployment_in(client, second["id"], "completed")
    assert await _prompt(client, agent_id) == "v2"


RACERS: list[dict[str, Any]] = [
    {"stages": LONG},
    {"strategy": "blue_green", "rollback_window_s": 600},
    {"strategy": "rolling", "batch_size": 1, "batch_pause_s": 600},
    {"strategy": "canary", "stages": LONG, "latency_p99_ms": 900},
]


async def test_two_deployments_racing_for_one_agent_exactly_one_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client, instances=2)
    answers = await asyncio.gather(*(_deploy(client, agent_id, **body) for body in RACERS))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409], [a.text for a in answers]
    refused = [a.json()["error"] for a in answers if a.status_code == 409]
    assert {e["code"] for e in refused} == {"DEPLOYMENT_IN_PROGRESS"}
    winner = next(a.json()["data"]["id"] for a in answers if a.status_code == 202)
    assert {e["details"]["deployment_id"] for e in refused} == {winner}
    await client.post(f"{DEPLOYMENTS}/{winner}/rollback", json={"reason": "done testing"})


async def test_a_bad_deployment_is_refused_before_anything_happens(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    no_stages = await _deploy(client, agent_id, strategy="canary")
    assert no_stages.status_code == 422
    assert no_stages.json()["error"]["details"]["errors"][0]["field"] == "body.stages"
    bad_spec = await _deploy(client, agent_id, spec={"name": "x", "params": {"temperature": 9}})
    assert bad_spec.status_code == 422
    assert "body.spec" in bad_spec.json()["error"]["details"]["errors"][0]["field"]
    bad_toml = await _deploy(client, agent_id, spec=None, config="name = [", stages=LONG)
    assert bad_toml.status_code == 422
    stranger = {"agent_id": str(uuid.uuid4()), "version_label": "v2", "spec": {"name": "x"}}
    unknown = await client.post(DEPLOYMENTS, json={**stranger, "strategy": "immediate"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "AGENT_NOT_FOUND"
    for body, field in (
        ({"strategy": "rolling"}, "body.batch_size"),
        ({"strategy": "blue_green", "stages": LONG}, "body.stages"),
        ({"strategy": "canary", "stages": LONG, "rollback_window_s": 5}, "body.rollback_window_s"),
        ({"strategy": "immediate", "latency_p99_ms": 0}, "body.latency_p99_ms"),
    ):
        refused = await _deploy(client, agent_id, **body)
        assert refused.status_code == 422, refused.text
        assert [d["field"] for d in refused.json()["error"]["details"]["errors"]] == [field]
    listed = await client.get(DEPLOYMENTS, params={"agent_id": agent_id})
    assert listed.json()["data"] == []
    missing = await client.get(f"{DEPLOYMENTS}/{uuid.uuid4()}")
    assert missing.json()["error"]["code"] == "DEPLOYMENT_NOT_FOUND"


async def test_a_hot_reload_starts_a_deployment_from_toml_or_json(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    name = (await client.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]["name"]
    toml = f'name = "{name}"\nsystem_prompt = "from toml"\n'
    reloaded = await client.put(
        f"/api/v1/agents/{agent_id}/reload",
        files={"config": ("agent-v2.toml", toml.encode(), "application/toml")},
        data={"strategy": "immediate", "version_label": "toml-v2"},
    )
    assert reloaded.status_code == 202, reloaded.text
    first = reloaded.json()["data"]
    assert first["version_label"] == "toml-v2"
    await deployment_in(client, first["id"], "completed")
    assert await _prompt(client, agent_id) == "from toml"

    canary = await client.put(
        f"/api/v1/agents/{agent_id}/reload",
        json={
            "spec": {"name": name, "system_prompt": "v3"},
            "strategy": "canary",
            "traffic_split": 25,
            "duration_s": 600,
        },
    )
    assert canary.status_code == 202, canary.text
    view = canary.json()["data"]
    assert (view["strategy"], view["percentage"]) == ("canary", 25)
    assert [s["percentage"] for s in view["stages"]] == [25, 100]
    await client.post(f"{DEPLOYMENTS}/{view['id']}/rollback", json={"reason": "test over"})

    bad = await client.put(
        f"/api/v1/agents/{agent_id}/reload", data={"config": "name = [", "strategy": "immediate"}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["details"]["errors"][0]["field"] == "body.config"


async def test_a_killed_deployment_process_resumes_the_canary_at_its_stage(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    agent_id = await _agent(client)
    stages = [{"percentage": 10, "duration_s": 3}, {"percentage": 50, "duration_s": 3}]
    view = await _started(client, agent_id, stages=stages)
    stack.stop_process("deployment", signal.SIGKILL)
    try:
        await asyncio.sleep(3.5)  # the first stage's time passes while no process runs
        assert (await client.get(f"{DEPLOYMENTS}/{view['id']}")).json()["data"][
            "current_stage"
        ] == 0
    finally:
        stack.start_process("deployment")
    restarted = time.monotonic()
    resumed = await deployment_in(client, view["id"], "rolling_out", stage=1)  # its timer re-armed
    assert time.monotonic() - restarted < 25
    assert resumed["stages"][0]["ended_at"] is not None
    await deployment_in(client, view["id"], "completed")
    types = await _event_types(client, view["id"], "deployment.completed")
    assert types == [
        "deployment.created",
        "deployment.stage_started",
        "deployment.stage_started",
        "deployment.promoted",
        "deployment.completed",
    ]
    assert await _prompt(client, agent_id) == "v2"


async def test_two_deployment_processes_record_each_transition_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    stack.start_process("deployment", "deployment-2")
    try:
        await asyncio.sleep(3)  # the second process catches up and arms the same timers
        agent_id = await _agent(client)
        view = await _started(client, agent_id, stages=CANARY)
        await deployment_in(client, view["id"], "completed")
        types = await _event_types(client, view["id"], "deployment.completed")
    finally:
        stack.stop_process("deployment-2")
    assert types == CANARY_EVENTS
    versions = (await client.get(f"/api/v1/agents/{agent_id}/versions")).json()["data"]
    assert len(versions) == 2  # the definition applied once


async def test_blue_green_switches_at_once_and_rolls_back_within_its_window(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    view = await _started(client, agent_id, strategy="blue_green", rollback_window_s=600)
    assert view["strategy"] == "blue_green"
    switched = await deployment_in(client, view["id"], "rolling_out", stage=1)
    assert switched["percentage"] == 100
    window = switched["window"]
    assert window["rollback_window_s"] == 600 and window["opens_at"] and window["closes_at"]
    assert await _prompt(client, agent_id) == "v1"  # the old version is kept warm
    back = await client.post(f"{DEPLOYMENTS}/{view['id']}/rollback", json={"reason": "worse"})
    assert back.status_code == 200, back.text
    assert (back.json()["data"]["status"], back.json()["data"]["percentage"]) == (
        "rolled_back",
        0,
    )
    assert await _prompt(client, agent_id) == "v1"
    types = await _event_types(client, view["id"], "deployment.rolled_back")
    assert types == [
        "deployment.created",
        "deployment.stage_started",
        "deployment.switched",
        "deployment.rolled_back",
    ]

    done = await _started(client, agent_id, strategy="blue_green", rollback_window_s=1)
    completed = await deployment_in(client, done["id"], "completed")
    assert completed["window"]["closes_at"] is not None
    assert await _prompt(client, agent_id) == "v2"
    types = await _event_types(client, done["id"], "deployment.completed")
    assert types[2:] == ["deployment.switched", "deployment.promoted", "deployment.completed"]


async def test_a_rolling_deployment_moves_the_instances_batch_by_batch(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client, instances=3)
    view = await _started(client, agent_id, strategy="rolling", batch_size=1, batch_pause_s=1)
    assert (view["current_stage"], view["percentage"], view["instances"]) == (0, 33, 3)
    assert await _prompt(client, agent_id) == "v1"
    done = await deployment_in(client, view["id"], "completed")
    assert [(b["moved"], b["percentage"]) for b in done["stages"]] == [(1, 33), (2, 66), (3, 100)]
    assert all(b["started_at"] for b in done["stages"])
    events = await _events(client, view["id"], "deployment.completed")
    batches = [data for kind, data in events if kind == "deployment.batch_started"]
    assert [(b["moved"], b["instances"], b["percentage"]) for b in batches] == [
        (1, 3, 33),
        (2, 3, 66),
        (3, 3, 100),
    ]
    assert [kind for kind, _ in events][-2:] == ["deployment.promoted", "deployment.completed"]
    assert await _prompt(client, agent_id) == "v2"


def _manifest(name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


async def _cluster(http: httpx.AsyncClient, prefix: str, replicas: int, **labels: str) -> str:
    """A new cluster of ``replicas`` agents from a template named as the cluster (prompt v1),
    labelled ``labels``."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    template = {"replicas": replicas, "spec": {"name": name, "system_prompt": "v1"}}
    manifest = _manifest(name, {"template": template}, **labels)
    created = await http.post("/api/v1/clusters", json=manifest)
    assert created.status_code == 201, created.text
    return name


async def _members(http: httpx.AsyncClient, name: str) -> list[str]:
    return list((await http.get(f"/api/v1/clusters/{name}")).json()["data"]["agent_ids"])


async def _template(http: httpx.AsyncClient, name: str, prompt: str) -> dict[str, Any] | None:
    """Cluster ``name``'s template once its definition has the system prompt ``prompt``."""
    cluster = body_of(await http.get(f"/api/v1/clusters/{name}"))["data"]
    template: dict[str, Any] = cluster["manifest"]["spec"]["template"]
    return template if template["spec"].get("system_prompt") == prompt else None


def _template_rollout(name: str, batch_size: int, pause_s: float, **spec: Any) -> dict[str, Any]:
    """The body of a rolling deployment of cluster ``name``'s new template (prompt v2)."""
    return {
        "cluster": name,
        "version_label": "template-v2",
        "spec": {"name": name, "system_prompt": "v2", **spec},
        "strategy": "rolling",
        "batch_size": batch_size,
        "batch_pause_s": pause_s,
    }


async def test_a_cluster_template_rolls_through_its_agents_by_batches(
    client: httpx.AsyncClient,
) -> None:
    name = await _cluster(client, "roll", 3, team="support")
    agent_ids = await _members(client, name)
    body = _template_rollout(name, 2, 1, labels={"tier": "b"})
    started = await client.post(DEPLOYMENTS, json=body)
    assert started.status_code == 202, started.text
    view = started.json()["data"]
    assert (view["cluster"], view["instances"], view["percentage"]) == (name, 3, 66)
    again = await client.post(DEPLOYMENTS, json=body)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "DEPLOYMENT_IN_PROGRESS"

    done = await deployment_in(client, view["id"], "completed")
    assert [b["agent_ids"] for b in done["stages"]] == [agent_ids[:2], agent_ids[2:]]
    events = await _events(client, view["id"], "deployment.completed")
    assert [data["agent_ids"] for kind, data in events if kind == "deployment.batch_started"] == [
        agent_ids[:2],
        agent_ids[2:],
    ]
    for number, agent_id in enumerate(agent_ids, 1):
        agent = (await client.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]
        assert (agent["name"], agent["system_prompt"]) == (f"{name}-{number}", "v2")
        assert agent["labels"] == {"parley.dev/cluster": name, "team": "support", "tier": "b"}
        own = (await client.get(DEPLOYMENTS, params={"agent_id": agent_id})).json()["data"]
        assert [(d["strategy"], d["status"]) for d in own] == [("immediate", "completed")]
        assert own[0]["version_label"] == "template-v2"

    template = await eventually(lambda: _template(client, name, "v2"))
    assert (template["replicas"], template["spec"]["name"]) == (3, name)
    assert template["spec"]["labels"] == {"tier": "b"}
    grown = await client.post(f"/api/v1/clusters/{name}/scale", json={"target_agents": 4})
    newest = body_of(grown)["data"]["agent_ids"][3]
    spec = body_of(await client.get(f"/api/v1/agents/{newest}"))["data"]["spec"]
    assert (spec["name"], spec["system_prompt"]) == (f"{name}-4", "v2")

    bare = _manifest(f"{name}-x", {"agents": [{"name": "a"}]})
    assert (await client.post("/api/v1/clusters", json=bare)).status_code == 201
    refused = await client.post(DEPLOYMENTS, json=body | {"cluster": f"{name}-x"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["errors"][0]["field"] == "body.cluster"
    canary = await client.post(DEPLOYMENTS, json=body | {"strategy": "canary", "stages": LONG})
    assert canary.status_code == 422, canary.text
    unknown = await client.post(DEPLOYMENTS, json=body | {"cluster": "no-such-cluster"})
    assert unknown.status_code == 404, unknown.text


async def _tick(stack: Stack, deployment_id: str, health: Health) -> None:
    """What the deployment service's board does when a stage is judged: a Tick carrying the
    new version's measured health, decided on the deployment's stream in the real store."""
    store = await open_store(nats_url=stack.nats_url)

    def decide(state: deployment.Deployment | None) -> list[NewEvent]:
        now = utcnow()
        decided = deployment.decide(state, deployment.Tick(health=health), Context(now)).events
        return to_new_events(
            decided, subject=deployment_id, namespace="default", source="/tests", now=now
        )

    try:
        repository = Repository[deployment.Deployment](store, deployment.evolve)
        await repository.execute(deployment_stream("default", deployment_id), decide)
    finally:
        await store.close()


async def test_past_the_latency_p99_threshold_it_rolls_back_by_itself_with_the_figures(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    agent_id = await _agent(client)
    view = await _started(client, agent_id, stages=LONG, latency_p99_ms=500, min_samples=10)
    assert view["latency_p99_ms"] == 500
    await _tick(stack, view["id"], Health(samples=40, errors=0, p99_ms=480))
    await _tick(stack, view["id"], Health(samples=9, errors=0, p99_ms=2000))  # too few
    assert (await client.get(f"{DEPLOYMENTS}/{view['id']}")).json()["data"]["status"] == (
        "rolling_out"
    )
    await _tick(stack, view["id"], Health(samples=12, errors=0, p99_ms=1400))
    back = await deployment_in(client, view["id"], "rolled_back")
    assert back["reason"] == "latency p99 1400 ms over 12 turns is above the threshold of 500 ms"
    assert back["percentage"] == 0
    assert back["metrics"] == [
        {
            "version": "new",
            "samples": 12,
            "errors": 0,
            "error_rate": 0.0,
            "success_rate": 1.0,
            "p99_ms": 1400.0,
        }
    ]
    events = await _events(client, view["id"], "deployment.rolled_back")
    assert [kind for kind, _ in events] == [
        "deployment.created",
        "deployment.stage_started",
        "deployment.rolled_back",
    ]
    assert events[-1][1]["automatic"] is True
    assert events[-1][1]["health"]["p99_ms"] == 1400
    assert await _prompt(client, agent_id) == "v1"
    again = await _started(client, agent_id, strategy="immediate")  # the slot is free again
    await deployment_in(client, again["id"], "completed")


async def test_a_running_deployment_shows_what_was_measured_of_its_new_version(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    started = await client.post(f"/api/v1/agents/{agent_id}/start")
    assert started.status_code == 200, started.text
    all_new = [{"percentage": 100, "duration_s": 600}]  # every turn on the new version
    view = await _started(client, agent_id, stages=all_new)
    assert view["metrics"] == []
    for _ in range(3):
        turn = await client.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
        assert turn.status_code == 200, turn.text
    async with asyncio.timeout(20):
        while True:
            shown = (await client.get(f"{DEPLOYMENTS}/{view['id']}")).json()["data"]
            if shown["metrics"] and shown["metrics"][0]["samples"] == 3:
                break
            await asyncio.sleep(0.1)
    [new] = shown["metrics"]
    assert (new["version"], new["errors"], new["error_rate"], new["success_rate"]) == (
        "new",
        0,
        0.0,
        1.0,
    )
    assert new["p99_ms"] is not None and new["p99_ms"] >= 0
    await client.post(f"{DEPLOYMENTS}/{view['id']}/rollback", json={"reason": "test over"})


async def test_a_cluster_agent_busy_with_its_own_deployment_holds_the_rollout_up(
    client: httpx.AsyncClient,
) -> None:
    name = await _cluster(client, "busy", 2)
    first, second = await _members(client, name)
    own = await _started(client, second, stages=LONG)  # the second agent's own canary
    started = await client.post(DEPLOYMENTS, json=_template_rollout(name, 1, 0.5))
    assert started.status_code == 202, started.text
    view = started.json()["data"]
    held = await deployment_in(client, view["id"], "applying")  # its last batch cannot start yet
    assert held["percentage"] == 100
    assert await _prompt(client, first) == "v2"
    assert await _prompt(client, second) == "v1"
    back = await client.post(f"{DEPLOYMENTS}/{own['id']}/rollback", json={"reason": "make way"})
    assert back.status_code == 200, back.text
    await deployment_in(client, view["id"], "completed")  # tried again every second
    assert await _prompt(client, second) == "v2"
