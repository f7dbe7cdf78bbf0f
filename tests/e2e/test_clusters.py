"""`/api/v1/clusters` through the real stack: deploy from YAML or JSON, read, pause/resume,
scale (and its in-progress window), delete; bad manifests leave no event behind."""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from e2e_support import error_of
from e2e_support import events_in
from tests_support import edge_client

from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import cluster_stream
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.devstack.stack import Stack
from parley.eventstore import EventStore
from parley.eventstore import EventStoreUnavailable
from parley.eventstore.factory import open_store
from parley.registry.clusters import create_cluster
from parley.registry.handlers import Registry

YAML = {"Content-Type": "application/yaml"}
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"

TEMPLATE_YAML = """\
apiVersion: parley.dev/v1
kind: AgentCluster
metadata:
  name: {name}
  labels: {{team: support}}
spec:
  resource_policy:
    max_concurrent_agents: 5
    idle_timeout: 300s
    scale_to_zero: true
  strategy: parallel
  budget: {{max_tokens: 100000}}
  template:
    replicas: 3
    spec:
      name: worker
      system_prompt: You answer support tickets.
      capabilities: [support]
"""


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name},
        "spec": spec or {"agents": [{"name": "triage"}, {"name": "writer", "instances": 2}]},
    }


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    opened = await open_store(nats_url=stack.nats_url)
    yield opened
    await opened.close()


async def _deploy(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await api.post("/api/v1/clusters", json=body)
    assert created.status_code == 201, created.text
    return created.json()["data"]


# --- deploy --------------------------------------------------------------------------------


async def test_a_yaml_manifest_with_a_template_deploys_three_running_labelled_agents(
    api: httpx.AsyncClient, namespace: str
) -> None:
    created = await api.post(
        "/api/v1/clusters", content=TEMPLATE_YAML.format(name="support"), headers=YAML
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/clusters/support"
    cluster = created.json()["data"]
    assert cluster["name"] == "support" and cluster["namespace"] == namespace
    assert cluster["state"] == "active" and cluster["agents_count"] == 3
    assert cluster["manifest"]["spec"]["resource_policy"]["idle_timeout"] == "300s"
    assert [a["name"] for a in cluster["agents"]] == ["worker-1", "worker-2", "worker-3"]
    assert all(a["status"] == "running" and a["instances"] == 1 for a in cluster["agents"])
    listed = await api.get("/api/v1/agents", params={"label": f"{CLUSTER_LABEL}=support"})
    agents = listed.json()["data"]
    assert sorted(a["id"] for a in agents) == sorted(cluster["agent_ids"])
    for agent in agents:
        assert agent["state"] == "running"
        assert agent["spec"]["labels"] == {CLUSTER_LABEL: "support", "team": "support"}
        assert agent["spec"]["budget"]["max_tokens"] == 100000
        assert agent["spec"]["capabilities"] == ["support"]


async def test_the_yaml_example_in_the_api_docs_deploys(api: httpx.AsyncClient) -> None:
    clusters = API_DOC.read_text().split("## Clusters", 1)[1]
    example = clusters.split("```yaml\n", 1)[1].split("```", 1)[0]
    created = await api.post("/api/v1/clusters", content=example, headers=YAML)
    assert created.status_code == 201, created.text
    cluster = created.json()["data"]
    assert cluster["name"] == "support" and cluster["labels"] == {"team": "support"}
    assert [a["name"] for a in cluster["agents"]] == [f"support-agent-{k}" for k in (1, 2, 3)]


@pytest.mark.parametrize("media_type", ["application/x-yaml", "text/yaml"])
async def test_every_yaml_media_type_is_accepted(api: httpx.AsyncClient, media_type: str) -> None:
    body = TEMPLATE_YAML.format(name="yaml-kinds").replace("replicas: 3", "replicas: 1")
    created = await api.post("/api/v1/clusters", content=body, headers={"Content-Type": media_type})
    assert created.status_code == 201, created.text


async def test_a_json_manifest_with_explicit_agents_deploys_them_and_reads_back(
    api: httpx.AsyncClient,
) -> None:
    cluster = await _deploy(api, manifest("pair"))
    assert [(a["name"], a["instances"]) for a in cluster["agents"]] == [
        ("triage", 1),
        ("writer", 2),
    ]
    read = await api.get("/api/v1/clusters/pair")
    assert read.status_code == 200, read.text
    detail = read.json()["data"]
    assert detail["agent_ids"] == cluster["agent_ids"] and detail["strategy"] == "parallel"
    for agent in detail["agents"]:
        assert agent["status"] == "running" and agent["provider"] == "offline"
        assert agent["metrics"]["agent_id"] == agent["id"]
        assert agent["metrics"]["total_requests"] == 0
    assert detail["metrics"]["total_requests"] == 0


async def test_start_false_leaves_the_agents_created_and_resume_starts_them(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/v1/clusters", params={"start": "false"}, json=manifest("idle"))
    assert created.status_code == 201, created.text
    assert {a["status"] for a in created.json()["data"]["agents"]} == {"created"}
    resumed = await api.patch("/api/v1/clusters/idle", json={"action": "resume"})
    assert resumed.status_code == 200, resumed.text
    assert {a["status"] for a in resumed.json()["data"]["agents"]} == {"running"}


async def test_a_second_cluster_with_the_same_name_is_refused_as_existing(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    await _deploy(api, manifest("dup"))
    before = await store.last_position()
    again = await api.post("/api/v1/clusters", json=manifest("dup", agents=[{"name": "other"}]))
    error_of(again, 409, "CLUSTER_EXISTS")
    assert await events_in(store, namespace, before) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/clusters/nope", None),
        ("PATCH", "/api/v1/clusters/nope", {"action": "pause"}),
        ("DELETE", "/api/v1/clusters/nope", None),
        ("POST", "/api/v1/clusters/nope/scale", {"agent_name": "a", "instances": 2}),
        ("GET", "/api/v1/clusters/Not_A_Name", None),
    ],
    ids=["get", "patch", "delete", "scale", "invalid name"],
)
async def test_an_unknown_cluster_is_not_found(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await api.request(method, path, json=body)
    error_of(response, 404, "CLUSTER_NOT_FOUND")


# --- bad manifests -------------------------------------------------------------------------

BAD_TOOL = manifest("bad-tool", agents=[{"name": "a"}, {"name": "b", "tools": [{"name": "nope"}]}])


def bad(id: str, body: dict[str, Any] | str, status: int, code: str, field: str | None) -> Any:
    return pytest.param(body, status, code, field, id=id)


# fmt: off
BAD = [
    bad("wrong apiVersion", {**manifest("x"), "apiVersion": "goagents.dev/v1"}, 422,
        "VALIDATION_ERROR", "body.apiVersion"),
    bad("wrong kind", {**manifest("x"), "kind": "Swarm"}, 422, "VALIDATION_ERROR", "body.kind"),
    bad("agents and template", manifest("x", agents=[{"name": "a"}],
        template={"spec": {"name": "t"}}), 422, "VALIDATION_ERROR", "spec"),
    bad("neither agents nor template", manifest("x", strategy="race"), 422,
        "VALIDATION_ERROR", "spec"),
    bad("unknown tool in the second agent", BAD_TOOL, 422, "TOOL_NOT_AVAILABLE",
        "spec.agents[1].tools[0].name"),
    bad("schema error in an agent", manifest("x", agents=[{"name": "a", "instances": -1}]), 422,
        "VALIDATION_ERROR", "body.spec.agents[0].instances"),
    bad("duplicate agent names", manifest("x", agents=[{"name": "a"}, {"name": "a"}]), 422,
        "VALIDATION_ERROR", "spec.agents[1].name"),
    bad("unknown persona", manifest("x", template={"spec": {"name": "t", "persona": "ghost"}}),
        422, "VALIDATION_ERROR", "spec.template.spec.persona"),
    bad("bad YAML", "apiVersion: parley.dev/v1\nkind: [AgentCluster\nmetadata: {}\n", 400,
        "INVALID_REQUEST", None),
    bad("YAML that is a list", "- a\n- b\n", 422, "VALIDATION_ERROR", None),
    bad("two YAML documents", "a: 1\n---\nb: 2\n", 400, "INVALID_REQUEST", None),
]
# fmt: on


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD)
async def test_a_bad_manifest_is_refused_in_the_envelope_and_appends_nothing(
    api: httpx.AsyncClient,
    store: EventStore,
    namespace: str,
    body: dict[str, Any] | str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = await store.last_position()
    if isinstance(body, str):
        response = await api.post("/api/v1/clusters", content=body, headers=YAML)
    else:
        response = await api.post("/api/v1/clusters", json=body)
    error = error_of(response, status, code)
    if field is not None:
        fields = [e["field"] for e in _field_list(error["details"])]
        assert field in fields, error
    assert await events_in(store, namespace, before) == []
    assert (await api.get("/api/v1/clusters")).json()["data"] == []


def _field_list(details: Any) -> list[dict[str, Any]]:
    return details["errors"] if isinstance(details, dict) else details


async def test_malformed_yaml_reports_the_line_and_column(api: httpx.AsyncClient) -> None:
    body = "apiVersion: parley.dev/v1\nkind: AgentCluster\nmetadata:\n  name: [x\n"
    error = error_of(await api.post("/api/v1/clusters", content=body, headers=YAML), 400,
                   "INVALID_REQUEST")  # fmt: skip
    assert "line" in error["message"] and error["details"]["line"] >= 4
    assert error["details"]["column"] >= 1


async def test_a_yaml_bomb_and_deep_nesting_are_refused_quickly_and_the_edge_lives_on(
    api: httpx.AsyncClient,
) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = "\n".join(
        ["apiVersion: parley.dev/v1", "kind: AgentCluster", "metadata: {name: boom}", "spec:",
         "  agents:", "  - name: a", "    tools:", "    - name: http_request", "      config:"]
        + [f"        {line}" for line in lines]
    )  # fmt: skip
    started = time.monotonic()
    response = await api.post("/api/v1/clusters", content=bomb, headers=YAML)
    error = error_of(response, 400, "INVALID_REQUEST")
    assert "expands" in error["message"] and time.monotonic() - started < 5
    deep = await api.post("/api/v1/clusters", content="[" * 100_000, headers=YAML)
    assert "nested too deeply" in error_of(deep, 400, "INVALID_REQUEST")["message"]
    cyclic = await api.post("/api/v1/clusters", content="&a [*a]", headers=YAML)
    error_of(cyclic, 400, "INVALID_REQUEST")
    assert (await api.get("/api/v1/clusters")).status_code == 200


async def test_a_yaml_body_over_the_size_limit_is_payload_too_large(api: httpx.AsyncClient) -> None:
    body = "a: " + "x" * 1_100_000
    error_of(await api.post("/api/v1/clusters", content=body, headers=YAML), 413,
           "PAYLOAD_TOO_LARGE")  # fmt: skip


async def test_a_manifest_for_another_namespace_than_the_request_is_refused(
    api: httpx.AsyncClient,
) -> None:
    body = manifest("ns-clash")
    body["metadata"]["namespace"] = "someone-else"
    error = error_of(await api.post("/api/v1/clusters", json=body), 422, "VALIDATION_ERROR")
    assert error["details"]["errors"][0]["field"] == "body.metadata.namespace"


async def test_an_agent_name_already_taken_is_refused_before_anything_is_created(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    taken = await api.post("/api/v1/agents", json={"name": "writer"})
    assert taken.status_code == 201, taken.text
    before = await store.last_position()
    error = error_of(await api.post("/api/v1/clusters", json=manifest("clash")), 409,
                   "AGENT_ALREADY_EXISTS")  # fmt: skip
    assert error["details"]["errors"][0]["field"] == "spec.agents[1].name"
    assert await events_in(store, namespace, before) == []


# --- lifecycle -----------------------------------------------------------------------------


async def test_pause_and_resume_apply_to_every_agent_and_skip_those_already_there(
    api: httpx.AsyncClient,
) -> None:
    cluster = await _deploy(api, manifest("lifecycle"))
    first = cluster["agent_ids"][0]
    assert (await api.post(f"/api/v1/agents/{first}/pause")).status_code == 200
    paused = await api.patch("/api/v1/clusters/lifecycle", json={"action": "pause"})
    assert paused.status_code == 200, paused.text
    body = paused.json()["data"]
    assert body["state"] == "paused" and {a["status"] for a in body["agents"]} == {"paused"}
    again = await api.patch("/api/v1/clusters/lifecycle", json={"action": "pause"})
    assert again.status_code == 200 and again.json()["data"]["version"] == body["version"]
    resumed = await api.patch("/api/v1/clusters/lifecycle", json={"action": "resume"})
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()["data"]
    assert body["state"] == "active" and {a["status"] for a in body["agents"]} == {"running"}
    listed = (await api.get("/api/v1/clusters", params={"state": "active"})).json()["data"]
    assert [c["name"] for c in listed] == ["lifecycle"]


async def test_a_bad_action_is_a_validation_error(api: httpx.AsyncClient) -> None:
    await _deploy(api, manifest("actions"))
    response = await api.patch("/api/v1/clusters/actions", json={"action": "explode"})
    error_of(response, 422, "VALIDATION_ERROR")


async def test_delete_stops_and_deletes_the_agents_and_frees_the_names(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    cluster = await _deploy(api, manifest("doomed"))
    before = await store.last_position()
    deleted = await api.delete("/api/v1/clusters/doomed")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    error_of(await api.get("/api/v1/clusters/doomed"), 404, "CLUSTER_NOT_FOUND")
    for agent_id in cluster["agent_ids"]:
        error_of(await api.get(f"/api/v1/agents/{agent_id}"), 404, "AGENT_NOT_FOUND")
    events = await events_in(store, namespace, before)
    assert events.count("agent.state_changed") == 2 and events.count("agent.deleted") == 2
    last_agent_deleted = len(events) - 1 - events[::-1].index("agent.deleted")
    assert events.index("cluster.deleted") > last_agent_deleted
    again = await _deploy(api, manifest("doomed"))
    assert set(again["agent_ids"]).isdisjoint(cluster["agent_ids"])


# --- scale ---------------------------------------------------------------------------------


async def test_scale_sets_the_agents_instances(api: httpx.AsyncClient) -> None:
    cluster = await _deploy(api, manifest("scaled"))
    writer = cluster["agent_ids"][1]
    scaled = await api.post(
        "/api/v1/clusters/scaled/scale", json={"agent_name": "writer", "instances": 5}
    )
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["data"] == {
        "agent_name": "writer",
        "agent_id": writer,
        "current_instances": 5,
        "target_instances": 5,
    }
    agent = (await api.get(f"/api/v1/agents/{writer}")).json()["data"]
    assert agent["spec"]["instances"] == 5
    detail = (await api.get("/api/v1/clusters/scaled")).json()["data"]
    assert [a["instances"] for a in detail["agents"]] == [1, 5] and detail["scaling"] is False
    unknown = await api.post(
        "/api/v1/clusters/scaled/scale", json={"agent_name": "nobody", "instances": 2}
    )
    assert (
        error_of(unknown, 422, "VALIDATION_ERROR")["details"]["errors"][0]["field"] == "agent_name"
    )


async def _open_scale_window(store: EventStore, namespace: str, name: str, age_s: float) -> None:
    """Append a `cluster.scale_started` as a registry that then died would have left it."""
    stream = cluster_stream(namespace, name)
    events = await store.read(stream)
    created = events[0].data
    await store.append(
        stream,
        [
            NewEvent(
                type="cluster.scale_started",
                subject=name,
                namespace=namespace,
                source="/parley/registry",
                time=utcnow() - timedelta(seconds=age_s),
                data={
                    "name": name,
                    "agent_id": created["agent_ids"][0],
                    "agent_name": "triage",
                    "instances": 9,
                },
            )
        ],
        events[-1].version,
    )


async def test_a_scale_while_another_is_in_progress_is_refused_until_it_is_abandoned(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    await _deploy(api, manifest("busy"))
    await _open_scale_window(store, namespace, "busy", age_s=1)
    body = {"agent_name": "writer", "instances": 3}
    error = error_of(await api.post("/api/v1/clusters/busy/scale", json=body), 409,
                   "SCALING_IN_PROGRESS")  # fmt: skip
    assert error["details"] == {"name": "busy", "agent_name": "triage"}
    error_of(await api.patch("/api/v1/clusters/busy", json={"action": "pause"}), 409,
           "SCALING_IN_PROGRESS")  # fmt: skip
    await _open_scale_window(store, namespace, "busy", age_s=31)  # a newer, but stale, window
    scaled = await api.post("/api/v1/clusters/busy/scale", json=body)
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["data"]["current_instances"] == 3


async def test_concurrent_scales_of_one_cluster_never_interleave(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    """Each scale either wins the window or is refused with 409; never two windows at once."""
    await _deploy(api, manifest("race"))
    targets = [2, 3, 4, 5]
    responses = await asyncio.gather(
        *(
            api.post("/api/v1/clusters/race/scale", json={"agent_name": "writer", "instances": n})
            for n in targets
        )
    )
    won = [n for n, r in zip(targets, responses, strict=True) if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            error_of(response, 409, "SCALING_IN_PROGRESS")
    assert won, [r.text for r in responses]
    events = [e.type for e in await store.read(cluster_stream(namespace, "race"))]
    assert events == ["cluster.created"] + ["cluster.scale_started", "cluster.scaled"] * len(won)
    detail = (await api.get("/api/v1/clusters/race")).json()["data"]
    assert detail["agents"][1]["instances"] in won


# --- list ----------------------------------------------------------------------------------


async def test_the_list_pages_by_name_and_filters_by_label(api: httpx.AsyncClient) -> None:
    for name in ("gamma", "alpha", "beta"):
        body = manifest(name, agents=[{"name": f"{name}-agent"}])
        body["metadata"]["labels"] = {"tier": "gold" if name != "beta" else "silver"}
        await _deploy(api, body)
    first = (await api.get("/api/v1/clusters", params={"limit": 2})).json()
    assert [c["name"] for c in first["data"]] == ["alpha", "beta"]
    assert first["pagination"]["has_more"] and first["pagination"]["total_count"] == 3
    assert first["data"][0]["agents_count"] == 1 and first["data"][0]["state"] == "active"
    cursor = first["pagination"]["next_cursor"]
    second = (await api.get("/api/v1/clusters", params={"limit": 2, "cursor": cursor})).json()
    assert [c["name"] for c in second["data"]] == ["gamma"] and not second["pagination"]["has_more"]
    gold = (await api.get("/api/v1/clusters", params={"label": "tier=gold"})).json()["data"]
    assert [c["name"] for c in gold] == ["alpha", "gamma"]
    error_of(await api.get("/api/v1/clusters", params={"cursor": "!!"}), 400, "INVALID_REQUEST")


async def test_clusters_are_per_namespace(api: httpx.AsyncClient, stack: Stack) -> None:
    await _deploy(api, manifest("mine"))
    async with edge_client(stack, timeout=10) as other:
        response = await other.get(
            "/api/v1/clusters/mine", headers={"X-Parley-Namespace": "c-elsewhere"}
        )
    error_of(response, 404, "CLUSTER_NOT_FOUND")


# --- compensation (the registry's handler over the stack's store) --------------------------


class _FailingStore:
    """The stack's store, refusing every `start` of the ``fail_at``-th agent started."""

    def __init__(self, inner: EventStore, fail_at: int) -> None:
        self.inner, self.fail_at, self.started = inner, fail_at, list[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(self, stream: str, events: Any, expected_version: int) -> Any:
        if any(e.data.get("action") == "start" for e in events):
            if stream not in self.started:
                self.started.append(stream)
            if self.started.index(stream) + 1 == self.fail_at:
                raise EventStoreUnavailable("injected failure")
        return await self.inner.append(stream, events, expected_version)


async def test_a_create_failing_half_way_removes_the_agents_it_created(
    api: httpx.AsyncClient, store: EventStore, namespace: str
) -> None:
    body = manifest("half", template={"spec": {"name": "w"}, "replicas": 3})
    body["metadata"]["namespace"] = namespace
    command = CreateCluster(namespace=namespace, manifest=msgspec.convert(body, ClusterManifest))
    registry = Registry(_FailingStore(store, fail_at=2))  # type: ignore[arg-type]
    before = await store.last_position()
    with pytest.raises(EventStoreUnavailable):
        await create_cluster(registry, command)
    assert await store.read(cluster_stream(namespace, "half")) == []
    events = await events_in(store, namespace, before)
    assert events.count("agent.created") == 3 and events.count("agent.deleted") == 3
    listed = await api.get("/api/v1/agents", params={"label": f"{CLUSTER_LABEL}=half"})
    assert listed.json()["data"] == []
    created = await api.post("/api/v1/clusters", json=body)  # the names are free again
    assert created.status_code == 201, created.text


async def test_a_registry_refusal_is_a_domain_error_with_the_cluster_code(
    store: EventStore, namespace: str
) -> None:
    body = manifest("direct", agents=[{"name": "a"}, {"name": "a"}])
    body["metadata"]["namespace"] = namespace
    command = CreateCluster(namespace=namespace, manifest=msgspec.convert(body, ClusterManifest))
    with pytest.raises(ParleyError) as info:
        await create_cluster(Registry(store), command)
    assert info.value.code is ErrorCode.VALIDATION_ERROR
    assert re.search(r"spec\.agents\[1\]\.name", info.value.message)
