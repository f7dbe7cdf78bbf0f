"""``just up --combined``: every service and the edge in one process (``python -m
parley.combined``). The whole platform works through it (a FIPA round trip between two agents
crosses the edge, the registry, messaging and the runtime; a task the tasks service; a
deployment the deployment service); SIGKILL restarts it with every agent kept; SIGTERM stops
the edge and then every service cleanly; Ctrl-C stops the stack.

One launcher serves the whole module."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
from devstack_launcher import Launcher
from devstack_launcher import running
from tests_support import eventually

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    with running(tmp_path_factory.mktemp("combined") / "state", "--combined") as launcher:
        yield launcher


@pytest.fixture
async def http(launched: Launcher) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": launched.admin_key()}
    async with httpx.AsyncClient(base_url=launched.edge_url, headers=headers, timeout=15) as c:
        yield c


async def started_agent(http: httpx.AsyncClient) -> str:
    created = await http.post("/api/v1/agents", json={"name": f"cb-{uuid.uuid4().hex[:8]}"})
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["data"]["id"]
    assert (await http.post(f"/api/v1/agents/{agent_id}/start")).status_code == 200
    return agent_id


async def round_trip(http: httpx.AsyncClient, sender: str, receiver: str) -> str | None:
    """The performative of the receiver's answer to a FIPA request (None while that fails)."""
    body = {
        "performative": "request",
        "sender": sender,
        "receivers": [receiver],
        "content": "what is 2 + 2?",
        "protocol": "fipa-request",
        "wait": 10,
    }
    try:
        answer = await http.post("/api/v1/messages", json=body)
    except httpx.TransportError:
        return None
    if answer.status_code != 200 or not (reply := answer.json()["data"].get("reply")):
        return None
    performative: str = reply["performative"]
    return performative


async def test_one_process_runs_every_service_and_the_edge(
    launched: Launcher, http: httpx.AsyncClient
) -> None:
    assert launched.pids().keys() == {"nats", "combined"}
    nc = await nats.connect(launched.nats_urls()[0])
    try:
        for service in ("registry", "runtime", "messaging", "tasks", "deployment"):
            health = await nc.request(f"parley.health.{service}", b"", timeout=5)
            assert b'"status":"ok"' in health.data.replace(b" ", b""), (service, health.data)
    finally:
        await nc.close()

    a, b = await started_agent(http), await started_agent(http)
    assert await round_trip(http, a, b) == "inform"
    task = await http.post("/api/v1/tasks", json={"name": "in-one-process"})
    assert task.status_code == 201, task.text
    name = (await http.get(f"/api/v1/agents/{b}")).json()["data"]["spec"]["name"]
    rollout = await http.post(
        "/api/v1/deployments",
        json={
            "agent_id": b,
            "version_label": "v2",
            "strategy": "immediate",
            "spec": {"name": name, "system_prompt": "answer briefly"},
        },
    )
    assert rollout.status_code == 202, rollout.text
    deployment = f"/api/v1/deployments/{rollout.json()['data']['id']}"

    async def completed() -> bool:
        return (await http.get(deployment)).json()["data"]["status"] == "completed"

    assert await eventually(completed, within=30, every=0.2)


async def test_a_killed_combined_process_is_restarted_with_every_agent(
    launched: Launcher, http: httpx.AsyncClient
) -> None:
    a, b = await started_agent(http), await started_agent(http)

    killed = launched.kill("combined")

    await asyncio.to_thread(
        launched.wait_for, r"^parley: combined exited \(killed by SIGKILL\)", 30, killed.mark
    )
    assert await eventually(lambda: round_trip(http, a, b), within=90, every=0.5) == "inform"
    assert launched.pids()["nats"] == killed.before["nats"]  # NATS was left alone


def test_sigterm_stops_the_edge_then_every_service_cleanly(launched: Launcher) -> None:
    before = len(launched.lines)

    os.kill(launched.pids()["combined"], signal.SIGTERM)

    launched.wait_for(r"^parley: combined exited \(exit code 0\)", 60, before)
    stopping = "".join(launched.lines[before:])
    assert "Application shutdown complete" in stopping  # the edge's own shutdown ran
    assert '"level":"error"' not in stopping, stopping
    assert "is being executed" not in stopping  # FastStream's line per subscriber, at INFO
    launched.wait_for(r"^parley: combined restarted", 30, before)  # and it is supervised


def test_ctrl_c_stops_the_combined_stack(launched: Launcher) -> None:
    launched.wait_for(r'"Uvicorn running on', 90, len(launched.lines) - 50)
    assert launched.stop() == 0, launched.output
    assert launched.output.rstrip().endswith("parley: stopped")
    assert launched.pids() == {}


def test_combined_and_cluster_are_refused_together(tmp_path: Path) -> None:
    launcher = subprocess.run(
        [sys.executable, "-m", "parley.devstack", "up", "--cluster", "--combined"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert launcher.returncode == 2
    assert "--cluster and --combined do not go together" in launcher.stderr
    assert not (tmp_path / ".state").exists()  # nothing was started
