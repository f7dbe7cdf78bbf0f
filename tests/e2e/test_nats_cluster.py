"""``just up --cluster``: three NATS nodes, every stream, KV bucket and object store at three
replicas, two processes of every service and two edges. A NATS node killed under a load of
agent creates is restarted; every create acknowledged with 2xx is stored once, none twice.

One launcher serves the whole module (it starts fifteen processes on a small machine)."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest
from devstack_launcher import UNLIMITED
from devstack_launcher import Launcher
from devstack_launcher import running
from e2e_support import all_agents
from nats.aio.client import Client
from tests_support import eventually

from parley.devstack.nats import SERVICES_USER
from parley.devstack.stack import SERVICES

pytestmark = pytest.mark.timeout(300)

EVENTS = "PARLEY_EVENTS"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    # the load creates agents as fast as the cluster takes them: no agent quota to run into
    state = tmp_path_factory.mktemp("cluster") / "state"
    with running(state, "--cluster", env=UNLIMITED) as launcher:
        yield launcher


@pytest.fixture
async def edges(launched: Launcher) -> AsyncIterator[list[httpx.AsyncClient]]:
    headers = {"X-API-Key": launched.admin_key()}
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
        for port in (launched.edge_port, launched.edge_port + 1)
    ]
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
async def nc(launched: Launcher) -> AsyncIterator[Client]:
    # credentials as options, not in the URLs: the nodes the client learns of get them too
    password = (launched.state / "nats" / f"{SERVICES_USER}.password").read_text().strip()
    client = await nats.connect(
        servers=[f"nats://127.0.0.1:{launched.nats_port + i}" for i in range(3)],
        user=SERVICES_USER,
        password=password,
        max_reconnect_attempts=-1,
    )
    yield client
    await client.close()


async def replicas(nc: Client) -> dict[str, tuple[int, str | None, list[bool]]]:
    """Each stream's configured replicas, its leader, and whether each follower is current."""
    found = {}
    for info in await nc.jetstream().streams_info():
        cluster = info.cluster
        assert cluster is not None
        followers = [bool(peer.current) for peer in cluster.replicas or []]
        found[info.config.name or ""] = (info.config.num_replicas or 1, cluster.leader, followers)
    return found


async def test_every_stream_has_three_replicas_and_both_edges_serve(
    launched: Launcher, edges: list[httpx.AsyncClient], nc: Client
) -> None:
    for http in edges:
        created = await http.post("/api/v1/agents", json={"name": f"cl-{uuid.uuid4().hex[:8]}"})
        assert created.status_code == 201, created.text
        agent_id = created.json()["data"]["id"]
        started = await http.post(f"/api/v1/agents/{agent_id}/start")
        assert started.status_code == 200, started.text
        chat = await http.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"})
        assert chat.status_code == 200, chat.text
        assert chat.json()["data"]["response"] == "echo: hi"
        sent = await http.post(
            "/api/v1/messages",
            json={"performative": "inform", "receivers": [agent_id], "content": "hello"},
        )
        assert sent.status_code == 202, sent.text
        assert sent.json()["data"]["delivered_to"] == [agent_id]

    streams = await replicas(nc)
    print(f"\nstreams: {sorted(streams)}")
    assert EVENTS in streams and any(name.startswith("KV_") for name in streams)
    assert {name: r for name, (r, _, _) in streams.items()} == dict.fromkeys(streams, 3)
    assert all(leader and len(followers) == 2 for _, leader, followers in streams.values())
    assert set(launched.pids()) == {
        *(f"nats-{i}" for i in (1, 2, 3)),
        *(f"{name}{suffix}" for name in (*SERVICES, "edge") for suffix in ("", "#2")),
    }


async def test_a_killed_nats_node_loses_and_duplicates_no_acknowledged_create(
    launched: Launcher, edges: list[httpx.AsyncClient], nc: Client
) -> None:
    leader = (await replicas(nc))[EVENTS][1]
    assert leader is not None
    acked: list[tuple[float, str, str]] = []  # (when, name, id)
    failed: Counter[str] = Counter()
    running = True

    async def create(worker: int) -> None:
        http = edges[worker % 2]
        while running:
            name = f"load-{uuid.uuid4().hex[:10]}"
            try:
                created = await http.post("/api/v1/agents", json={"name": name})
            except httpx.TransportError as exc:
                failed[type(exc).__name__] += 1
                continue
            if 200 <= created.status_code < 300:
                acked.append((time.monotonic(), name, created.json()["data"]["id"]))
            else:
                failed[f"{created.status_code} {created.json()['error']['message'][:50]}"] += 1
                await asyncio.sleep(0.05)

    load = [asyncio.create_task(create(worker)) for worker in range(4)]
    try:
        await eventually(lambda: asyncio.sleep(0, len(acked) >= 20), within=60)
        killed = launched.kill(leader)
        killed_at = killed.at
        await asyncio.to_thread(launched.wait_for, rf"^parley: {leader} restarted", 30, killed.mark)

        async def caught_up() -> bool:
            try:
                streams = await replicas(nc)
            except (nats.errors.Error, TimeoutError):
                return False
            return all(len(f) == 2 and all(f) for _, _, f in streams.values())

        await eventually(caught_up, within=60, every=0.2)
        rejoined_after = time.monotonic() - killed_at
        count = len(acked)
        try:
            await eventually(lambda: asyncio.sleep(0, len(acked) >= count + 20), within=60)
        except AssertionError as exc:  # say why the creates did not come back
            raise AssertionError(f"{exc}; failures {dict(failed)}") from None
    finally:
        running = False
        await asyncio.gather(*load)

    times = [when for when, _, _ in acked]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > killed_at - 1]
    print(
        f"\ncluster recovery: {len(acked)} creates acknowledged, failures {dict(failed)}; "
        f"longest gap between acks after the kill {max(gaps):.2f} s; "
        f"{leader} restarted and every stream's replicas current {rejoined_after:.2f} s "
        "after the kill"
    )

    async def listed() -> dict[str, Any] | None:
        agents = await all_agents(edges[0])
        return agents if {agent_id for _, _, agent_id in acked} <= agents.keys() else None

    agents = await eventually(listed, within=30, every=0.5)
    for _, name, agent_id in acked:
        assert agents[agent_id]["spec"]["name"] == name
    names = Counter(a["spec"]["name"] for a in agents.values())
    assert [name for name, n in names.items() if n > 1] == []
