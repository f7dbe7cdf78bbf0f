"""``just up`` keeps the stack running: a part killed with SIGKILL (any service, the edge, or
nats-server itself) is restarted, the others keep running untouched, the edge keeps serving
while a service is down, the restarted part works again, and what was stored before is still
there. Ctrl-C still stops every process.

One launcher serves the whole module (it starts many processes on a small machine)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest
from devstack_launcher import Killed
from devstack_launcher import Launcher
from devstack_launcher import running
from tests_support import eventually

from parley.contracts.registry import agent_stream
from parley.eventstore.factory import open_store

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    with running(tmp_path_factory.mktemp("supervised") / "state") as launcher:
        yield launcher


@pytest.fixture
async def http(launched: Launcher) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": launched.admin_key()}
    async with httpx.AsyncClient(base_url=launched.edge_url, headers=headers, timeout=10) as c:
        yield c


async def create_agent(http: httpx.AsyncClient) -> dict[str, Any] | None:
    """A new agent (a registry command through the edge), or None while that fails."""
    try:
        created = await http.post("/api/v1/agents", json={"name": f"sv-{uuid.uuid4().hex[:8]}"})
    except httpx.TransportError:
        return None
    return created.json()["data"] if created.status_code == 201 else None


async def new_agent(http: httpx.AsyncClient) -> dict[str, Any]:
    """A new agent, made while the whole stack is up."""
    agent = await create_agent(http)
    assert agent is not None
    return agent


async def restarted(launched: Launcher, part: str, killed: Killed) -> int:
    """Wait for the launcher to report ``part`` killed and restarted; its new pid."""
    mark = killed.mark
    await asyncio.to_thread(
        launched.wait_for, rf"^parley: {part} exited \(killed by SIGKILL\)", 30, mark
    )
    found = await asyncio.to_thread(
        launched.wait_for, rf"^parley: {part} restarted \(pid (\d+)\)", 30, mark
    )
    return int(found[1])


def assert_only_restarted(launched: Launcher, part: str, killed: Killed, pid: int) -> None:
    """``part`` runs again as the new process ``pid``; every other process is the one it was."""
    after, before = launched.pids(), dict(killed.before)
    assert after[part] == pid != before[part]
    after.pop(part), before.pop(part)
    assert after == before  # nothing else was restarted


async def stored_names(launched: Launcher, agent_ids: list[str]) -> list[str]:
    """The name each agent was created with, read from the event store itself."""
    url = launched.nats_urls()[0]
    nc = await nats.connect(url)
    try:
        store = await open_store(backend="jetstream", nats_url=url, nc=nc)
        names = []
        for agent_id in agent_ids:
            events = await store.read(agent_stream(agent_id))
            names.append(events[0].data["spec"]["name"])
        await store.close()
        return names
    finally:
        await nc.close()


async def test_a_killed_service_is_restarted_while_the_edge_keeps_serving(
    launched: Launcher, http: httpx.AsyncClient
) -> None:
    agent = await new_agent(http)

    killed = launched.kill("registry")

    assert (await http.get("/health")).status_code == 200
    read = await http.get(f"/api/v1/agents/{agent['id']}")
    assert read.status_code == 200 and read.json()["data"]["spec"] == agent["spec"]
    pid = await restarted(launched, "registry", killed)
    assert await eventually(lambda: create_agent(http), within=60, every=0.2)
    print(f"\nregistry: creates work again {time.monotonic() - killed.at:.2f} s after the kill")
    assert_only_restarted(launched, "registry", killed, pid)


async def works(http: httpx.AsyncClient, part: str, agent_id: str) -> bool:
    """Whether a request that needs ``part`` succeeds (False while it fails)."""
    try:
        if part == "runtime":
            answer = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
            return answer.status_code == 200
        if part == "messaging":
            sent = {"performative": "inform", "receivers": [agent_id], "content": "up?"}
            answer = await http.post("/api/v1/messages", json=sent)
            return answer.status_code in (200, 202)
        if part == "tasks":
            answer = await http.post("/api/v1/tasks", json={"name": "after-a-kill"})
            return answer.status_code == 201
        return (await http.get("/ready")).status_code == 200  # the edge
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("part", ["runtime", "messaging", "tasks", "edge"])
async def test_each_killed_part_is_restarted_alone_and_works_again(
    launched: Launcher, http: httpx.AsyncClient, part: str
) -> None:
    agent = await new_agent(http)
    assert (await http.post(f"/api/v1/agents/{agent['id']}/start")).status_code == 200
    assert await works(http, part, agent["id"])

    killed = launched.kill(part)

    if part != "edge":  # the edge keeps serving what it holds while the service is down
        read = await http.get(f"/api/v1/agents/{agent['id']}")
        assert read.status_code == 200
    pid = await restarted(launched, part, killed)
    assert await eventually(lambda: works(http, part, agent["id"]), within=60, every=0.2)
    print(f"\n{part}: works again {time.monotonic() - killed.at:.2f} s after the kill")
    assert_only_restarted(launched, part, killed, pid)


async def test_a_killed_nats_server_is_restarted_with_its_data(
    launched: Launcher, http: httpx.AsyncClient
) -> None:
    agent = await new_agent(http)

    killed = launched.kill("nats")

    pid = await restarted(launched, "nats", killed)
    # the services make again what the server kept in memory only (rate-limit windows,
    # leases, tickets): none of them is restarted
    again = await eventually(lambda: create_agent(http), within=60, every=0.2)
    print(f"\nnats: creates work again {time.monotonic() - killed.at:.2f} s after the kill")
    names = [agent["spec"]["name"], again["spec"]["name"]]
    assert await stored_names(launched, [agent["id"], again["id"]]) == names
    read = await http.get(f"/api/v1/agents/{agent['id']}")
    assert read.status_code == 200 and read.json()["data"]["spec"] == agent["spec"]
    assert_only_restarted(launched, "nats", killed, pid)  # no service, nor the edge


def test_ctrl_c_stops_every_process_of_the_stack(launched: Launcher) -> None:
    assert launched.pids().keys() >= {"nats", "registry", "runtime", "messaging", "tasks", "edge"}

    assert launched.stop() == 0, launched.output
    assert launched.output.rstrip().endswith("parley: stopped")
    assert launched.pids() == {}
