"""Metrics through the whole stack: the edge's Prometheus `/metrics` counts what the event
store recorded, every service serves `/metrics` and `/healthz` on its own port, and the JSON
views answer in GoAgents' and Caxton's shapes.

The stack is this module's own (a fresh store, so its counters are exactly the store's
events), with each service on a free metrics port and the runtime pointed at the local wire
server for a chat turn with a tool call.
"""

import asyncio
import json
import re
import uuid
from collections import Counter
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import new_agent
from e2e_support import started
from prometheus_client.parser import text_string_to_metric_families
from tests_support import edge_client
from tests_support import eventually
from tests_support import export_events
from wire_server import WireServer

from parley.contracts.envelope import Event
from parley.devstack.nats import free_port
from parley.devstack.stack import SERVICES
from parley.devstack.stack import Stack

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


class MeteredStack(Stack):
    """A stack whose services each serve metrics on a free port of their own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_ports = {name: free_port() for name in SERVICES}

    def start_process(
        self, name: str, key: str | None = None, env: dict[str, str] | None = None
    ) -> Any:
        port = self.metrics_ports.get(key or name)
        extra = {"PARLEY_METRICS_PORT": str(port)} if port else {}
        return super().start_process(name, key, {**extra, **(env or {})})


@pytest.fixture(scope="module")
async def metered(
    wire: WireServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MeteredStack]:
    env = {
        "PARLEY_AUTH": "on",
        "PARLEY_ANTHROPIC_BASE_URL": wire.url,
        "ANTHROPIC_API_KEY": "sk-test-metrics-0123456789",
        "PARLEY_ANTHROPIC_MAX_RETRIES": "1",
    }
    async with started(MeteredStack(tmp_path_factory.mktemp("metrics"), env=env)) as stack:
        yield stack


@pytest.fixture
async def http(metered: MeteredStack) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client(metered, timeout=30) as client:
        yield client


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` keyed by the values of ``labels``."""
    return {
        tuple(dict(pairs)[label] for label in labels): value
        for (sample, pairs), value in samples.items()
        if sample == name
    }


async def exposition(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:  # no credentials
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def scrape(url: str) -> Samples:
    return parse(await exposition(url))


def shape(value: Any) -> Any:
    """The keys of ``value`` at every depth (what a client relies on), without the values."""
    return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None


def model_call(counts: dict[str, defaultdict[tuple[str, ...], float]], step: Any) -> None:
    """Count one recorded model step (a ``StepRecorded``'s fields) into ``counts``."""
    if step["kind"] != "model":
        return
    key = (step["provider"], step["model"])
    usage = step.get("usage", {})
    counts["parley_llm_calls_total"][key] += 1
    counts["parley_llm_tokens_total"][(*key, "input")] += usage.get("input_tokens", 0)
    counts["parley_llm_tokens_total"][(*key, "output")] += usage.get("output_tokens", 0)
    counts["parley_llm_cost_usd_total"][key] += usage.get("cost_usd", 0.0)


def expected(events: list[Event]) -> dict[str, dict[tuple[str, ...], float]]:
    """The counters the recorded ``events`` add up to, counted here from the events."""
    counts: dict[str, defaultdict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
    for event in events:
        kind, _, what = event.type.partition(".")
        counts["parley_events_total"][(event.stream.split("-")[0],)] += 1
        if kind in ("turn", "execution", "task") and what in (
            "completed",
            "failed",
            "cancelled",
            "interrupted",
        ):
            counts[f"parley_{kind}s_total"][(what,)] += 1
            if last := event.data.get("last_step"):  # the run's last answer, with its end
                model_call(counts, last)
        elif event.type == "task.created":
            counts["parley_tasks_created_total"][()] += 1
        elif what == "step_recorded":
            model_call(counts, event.data)
        elif event.type == "tool.called":
            counts["parley_tool_calls_total"][(event.data["name"],)] += 1
        elif event.type == "tool.failed":
            counts["parley_tool_failures_total"][(event.data["name"],)] += 1
        elif event.type == "message.sent":
            counts["parley_messages_total"][(event.data["message"]["performative"],)] += 1
            if event.data.get("receipt"):  # a reply worked out at once records its delivery
                counts["parley_message_deliveries_total"][("delivered",)] += 1
        elif kind == "message":
            counts["parley_message_deliveries_total"][(what,)] += 1
    return {name: {k: v for k, v in values.items() if v} for name, values in counts.items()}


LABELS = {
    "parley_events_total": ("category",),
    "parley_turns_total": ("outcome",),
    "parley_executions_total": ("outcome",),
    "parley_tasks_total": ("outcome",),
    "parley_tasks_created_total": (),
    "parley_llm_calls_total": ("provider", "model"),
    "parley_llm_tokens_total": ("provider", "model", "direction"),
    "parley_llm_cost_usd_total": ("provider", "model"),
    "parley_tool_calls_total": ("tool",),
    "parley_tool_failures_total": ("tool",),
    "parley_messages_total": ("performative",),
    "parley_message_deliveries_total": ("outcome",),
}


async def agent(http: httpx.AsyncClient, *, start: bool = True, **spec: Any) -> str:
    return await new_agent(http, "m", actions=("start",) if start else (), **spec)


async def workload(http: httpx.AsyncClient, wire: WireServer) -> None:
    """Agents in three states, a chat turn with a tool call, ACL messages, a task."""
    chatty = await agent(
        http, provider="anthropic", model="claude-haiku-4-5", tools=[{"name": "calculator"}]
    )
    bidder = await agent(http, bidding={"base_cost": 1, "default_time_s": 1, "confidence": 0.9})
    await agent(http, start=False)
    wire.calls = [("call_a", "calculator", ['{"expres', 'sion": "6*7"}'])]
    wire.script("anthropic", "tools", "text")
    chat = await http.post(f"/api/v1/agents/{chatty}/chat", json={"message": "6 times 7?"})
    assert chat.status_code == 200, chat.text
    assert [call["name"] for call in chat.json()["data"]["tool_calls"]] == ["calculator"]
    for performative in ("inform", "inform", "query-if"):
        sent = await http.post(
            "/api/v1/messages",
            json={
                "performative": performative,
                "sender": "user:ops",
                "receivers": [bidder],
                "content": "status?",
            },
        )
        assert sent.status_code in (200, 201, 202), sent.text
    task = await http.post("/api/v1/tasks", json={"name": "sum", "participants": [bidder]})
    assert task.status_code == 201, task.text
    task_id = task.json()["data"]["task_id"]
    done = await http.post(
        f"/api/v1/tasks/{task_id}/distribute", json={"wait": True, "max_wait_seconds": 10}
    )
    assert done.status_code == 200, done.text

    async def finished() -> bool:
        view = (await http.get(f"/api/v1/tasks/{task_id}")).json()["data"]
        return view["status"] in ("completed", "failed")

    await eventually(finished, within=30)


async def test_the_edges_counters_equal_the_recorded_events(metered, http, wire) -> None:
    await workload(http, wire)

    async def agreeing() -> tuple[Samples, dict[str, dict[tuple[str, ...], float]]] | None:
        want = expected(await export_events(metered.nats_url))
        got = await scrape(f"{metered.edge_url}/metrics")
        found = {name: series(got, name, *LABELS[name]) for name in LABELS}
        found = {name: {k: v for k, v in values.items() if v} for name, values in found.items()}
        agree = all(found[name] == pytest.approx(want.get(name, {})) for name in LABELS)
        return (got, want) if agree else None

    try:
        got, want = await eventually(agreeing, within=20, every=0.5)
    except AssertionError:  # show what differs
        want = expected(await export_events(metered.nats_url))
        got = await scrape(f"{metered.edge_url}/metrics")
        for name in LABELS:
            found = {k: v for k, v in series(got, name, *LABELS[name]).items() if v}
            assert found == pytest.approx(want.get(name, {})), name
        raise
    # the workload is in them: a turn with a tool call, messages, a task, model tokens
    assert want["parley_turns_total"][("completed",)] >= 1
    assert want["parley_tool_calls_total"][("calculator",)] == 1
    assert want["parley_messages_total"][("inform",)] >= 2
    assert want["parley_messages_total"][("query-if",)] >= 1
    assert sum(want["parley_tasks_total"].values()) == 1
    assert want["parley_llm_tokens_total"][("anthropic", "claude-haiku-4-5", "input")] > 0
    # agents by state: the API's list
    listed = (await http.get("/api/v1/agents", params={"limit": 100})).json()["data"]
    states = Counter(view["state"] for view in listed)
    assert {k[0]: v for k, v in series(got, "parley_agents", "state").items() if v} == states
    assert states["running"] == 2 and states["created"] == 1
    # the queues were polled: the inbox and work consumers are there
    consumers = series(got, "parley_consumer_pending_messages", "stream", "consumer")
    assert {stream for stream, _ in consumers} == {"PARLEY_INBOX", "PARLEY_WORK"}
    assert series(got, "parley_stream_messages", "stream")[("PARLEY_EVENTS",)] > 0
    assert ("process_resident_memory_bytes", ()) in got
    # nothing identifying: no namespace, agent, session or message id in a label
    labels = {name for (_, pairs) in got for name, _ in pairs}
    assert not labels & {"namespace", "agent_id", "agent", "session_id", "message_id", "id"}


async def test_every_documented_series_is_served(metered) -> None:
    documented = {
        name.removesuffix("_total") for name in re.findall(r"`(parley_[a-z_]+)`", DOC.read_text())
    }
    urls = [f"{metered.edge_url}/metrics"]
    urls += [f"http://127.0.0.1:{port}/metrics" for port in metered.metrics_ports.values()]
    served = {
        family.name
        for url in urls
        for family in text_string_to_metric_families(await exposition(url))
    }
    assert documented - served == set()
    assert {name for name in served if name.startswith("parley_")} - documented == set()


async def test_every_service_serves_its_metrics_and_health(metered, http) -> None:
    taken = f"twice-{uuid.uuid4().hex[:8]}"
    first = await http.post("/api/v1/agents", json={"name": taken})
    assert first.status_code == 201, first.text
    again = await http.post("/api/v1/agents", json={"name": taken})  # the registry refuses it
    assert again.json()["error"]["code"] == "AGENT_ALREADY_EXISTS", again.text
    for name, port in metered.metrics_ports.items():
        samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        handlers = series(samples, "faststream_received_messages_total", "handler")
        assert (f"parley.health.{name}",) in handlers, (name, sorted(handlers))
        async with httpx.AsyncClient(timeout=10) as client:
            health = await client.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert ("process_cpu_seconds_total", ()) in samples
    # the registry serves its commands with raw nats-py, the tasks service through FastStream
    registry = await scrape(f"http://127.0.0.1:{metered.metrics_ports['registry']}/metrics")
    commands = series(registry, "parley_commands_total", "service", "command", "outcome")
    assert commands[("registry", "create_agent", "ok")] >= 1
    assert commands[("registry", "create_agent", "error")] >= 1
    task = {"name": "sum", "participants": [first.json()["data"]["id"]]}
    assert (await http.post("/api/v1/tasks", json=task)).status_code == 201
    tasks = await scrape(f"http://127.0.0.1:{metered.metrics_ports['tasks']}/metrics")
    assert ("parley.cmd.tasks.create_task",) in series(
        tasks, "faststream_received_processed_messages_total", "handler"
    )
    counted_tasks = series(tasks, "parley_commands_total", "service", "command", "outcome")
    assert counted_tasks[("tasks", "create_task", "ok")] >= 1
    assert (
        series(registry, "parley_command_duration_seconds_count", "service", "command")[
            ("registry", "create_agent")
        ]
        >= 1
    )
    # messaging serves its commands with raw nats-py: counted all the same
    sent = await http.post(
        "/api/v1/messages",
        json={
            "performative": "inform",
            "sender": "user:ops",
            "receivers": ["user:bob"],
            "content": "hi",
        },
    )
    assert sent.status_code in (200, 201, 202), sent.text
    messaging = await scrape(f"http://127.0.0.1:{metered.metrics_ports['messaging']}/metrics")
    counted = series(messaging, "parley_commands_total", "service", "command", "outcome")
    assert counted[("messaging", "send", "ok")] >= 1


async def test_metrics_is_public_and_the_json_views_are_not(metered) -> None:
    async with httpx.AsyncClient(base_url=metered.edge_url, timeout=10) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 200
        schema = (await anonymous.get("/schema/openapi.json")).json()
        assert {"/metrics", "/api/v1/metrics", "/api/v1/metrics/system"} <= set(schema["paths"])
        assert schema["paths"]["/metrics"]["get"]["security"] == []
        assert schema["paths"]["/api/v1/metrics"]["get"]["security"] != []
        for path in ("/api/v1/metrics", "/api/v1/metrics/system"):
            response = await anonymous.get(path)
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_the_json_views_have_goagents_and_caxtons_shapes(metered, http, wire) -> None:
    namespace = f"m-{uuid.uuid4().hex[:8]}"
    scoped = {"X-Parley-Namespace": namespace}
    empty = (await http.get("/api/v1/metrics", headers=scoped)).json()["data"]
    assert empty["agents"] == {"total": 0, "active": 0, "idle": 0}
    assert empty["requests"]["total"] == 0
    running = await http.post("/api/v1/agents", json={"name": "one"}, headers=scoped)
    assert running.status_code == 201, running.text
    agent_id = running.json()["data"]["id"]
    assert (await http.post(f"/api/v1/agents/{agent_id}/start", headers=scoped)).status_code == 200
    chat = await http.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=scoped
    )
    assert chat.status_code == 200, chat.text

    async def summary() -> dict[str, Any] | None:
        data: dict[str, Any] = (await http.get("/api/v1/metrics", headers=scoped)).json()["data"]
        return data if data["requests"]["total"] == 1 else None

    data = await eventually(summary)
    documented = [json.loads(block)["data"] for block in re.findall(JSON_BLOCK, DOC.read_text())]
    assert shape(data) == shape(documented[0])  # GoAgents' shape, as docs/metrics.md shows
    assert data["system"]["memory_usage_mb"] > 0 and data["system"]["goroutines"] > 0
    assert data["clusters"] == {"total": 0, "running": 0, "scaling": 0}
    assert data["agents"] == {"total": 1, "active": 1, "idle": 0}
    assert data["requests"]["success_rate"] == 1.0 and data["requests"]["requests_per_minute"] == 1
    assert data["requests"]["avg_response_time_ms"] > 0

    system = (await http.get("/api/v1/metrics/system", headers=scoped)).json()["data"]
    assert shape(system) == shape(documented[1])  # Caxton's
    assert system["agents"] == {"total": 1, "running": 1, "failed": 0}
    assert system["messages"]["total_processed"] == 0
    assert system["resources"]["disk_used_gb"] > 0
    bad = await http.get("/api/v1/metrics/system", headers={"X-Parley-Namespace": "Not OK"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_an_edge_started_later_rebuilds_the_same_counters(metered) -> None:
    port = free_port()
    metered.start_process("edge", key="edge-rebuilt", env={"PARLEY_EDGE_PORT": str(port)})
    try:

        async def both() -> bool:
            try:
                first, second = await asyncio.gather(
                    scrape(f"{metered.edge_url}/metrics"),
                    scrape(f"http://127.0.0.1:{port}/metrics"),
                )
            except (httpx.TransportError, AssertionError):
                return False  # not up yet
            counters = [
                {
                    k: v
                    for k, v in samples.items()
                    if k[0].startswith("parley_") and "_total" in k[0]
                }
                for samples in (first, second)
            ]
            return bool(counters[0]) and counters[0] == counters[1]

        assert await eventually(both, within=60, every=0.5)
    finally:
        await asyncio.to_thread(metered.stop_process, "edge-rebuilt")
