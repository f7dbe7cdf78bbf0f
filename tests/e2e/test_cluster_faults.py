"""Faults in ``just up --cluster`` under load: while a few clients keep creating and patching
agents, chatting (plain turns and turns that call the ``calculator`` tool) and sending ACL
requests that wait for the ``inform``, over both edges, one NATS node (the event stream's
leader) is killed with SIGKILL, then one process of each service and one edge. The
supervisor restarts each.

After the load: every request answered with 2xx has its event(s) in the store, read straight
from JetStream; no event is stored twice (id, or stream and version), every stream's
versions are dense, no tool call is called or finished twice; and a fresh edge started over the same
store rebuilds views equal to the live edges'. How long each kill took to recover is printed
(``pytest -s``) and written to ``recovery.txt`` in the test's tmp dir.

One launcher, one test: it starts sixteen processes on a small machine."""

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from devstack_launcher import UNLIMITED
from devstack_launcher import Launcher
from devstack_launcher import free_ports
from devstack_launcher import running
from nats.aio.client import Client
from tests_support import capture_views
from tests_support import eventually
from tests_support import export_events

from parley.contracts.envelope import Event
from parley.devstack.nats import SERVICES_USER

pytestmark = pytest.mark.timeout(600)

NODES = 3
KINDS = ("create", "patch", "chat", "tool", "acl")
"""What the load acknowledges: agent creates and patches, plain chat turns, chat turns that
call a tool, ACL request → inform round trips."""
KILLED = ("registry", "runtime", "messaging", "tasks", "edge")
"""After the NATS node, one process of each, in this order."""
PAUSE = 0.05
"""Between one client's requests (a bounded load)."""
Acked = dict[str, list[tuple[float, dict[str, Any]]]]


class Load:
    """A few clients alternating between the two edges; what each got acknowledged."""

    def __init__(self, edges: list[httpx.AsyncClient]) -> None:
        self.edges = edges
        self.acked: Acked = defaultdict(list)
        self.failed: Counter[str] = Counter()
        self.errors: dict[str, str] = {}
        """The first answer of each 5xx status and kind."""
        self.running = True
        self._turn = 0

    async def call(self, kind: str, method: str, path: str, body: Any) -> dict[str, Any] | None:
        """The answer's ``data`` on 2xx, else None (counted as a failure of ``kind``)."""
        self._turn += 1
        http = self.edges[self._turn % len(self.edges)]
        try:
            answer = await http.request(method, path, json=body)
        except httpx.TransportError as exc:
            self.failed[f"{kind} {type(exc).__name__}"] += 1
        else:
            if answer.is_success:
                data: dict[str, Any] = answer.json()["data"]
                return data
            self.failed[f"{kind} {answer.status_code}"] += 1
            if answer.status_code >= 500:
                self.errors.setdefault(f"{kind} {answer.status_code}", answer.text[:300])
        await asyncio.sleep(0.2)
        return None

    def ack(self, kind: str, **what: Any) -> None:
        self.acked[kind].append((time.monotonic(), what))

    def since(self, kind: str, when: float) -> list[float]:
        return [at for at, _ in self.acked[kind] if at > when]

    async def agents(self) -> None:
        """Create an agent now and then, patch the newest one otherwise."""
        mine: list[str] = []
        for i in range(1_000_000):
            if not self.running:
                return
            if i % 4 == 0 or not mine:
                name = f"fx-{uuid.uuid4().hex[:10]}"
                if created := await self.call("create", "POST", "/api/v1/agents", {"name": name}):
                    self.ack("create", id=created["id"], name=name)
                    mine.append(created["id"])
            else:
                token = uuid.uuid4().hex
                body = {"description": f"d-{token}"}
                if await self.call("patch", "PATCH", f"/api/v1/agents/{mine[-1]}", body):
                    self.ack("patch", id=mine[-1], token=token)
            await asyncio.sleep(PAUSE)

    async def chat(self, agent_id: str) -> None:
        """Chat turns with ``agent_id``, every other one calling the calculator; a new
        conversation every six turns."""
        conversation: str | None = None
        for i in range(1_000_000):
            if not self.running:
                return
            token = uuid.uuid4().hex[:12]
            tool = i % 2 == 1
            message = f'call calculator({{"expression": "{i}*7"}}) {token}' if tool else token
            body = {
                "message": message,
                **({"conversation_id": conversation} if conversation else {}),
            }
            answer = await self.call("chat", "POST", f"/api/v1/agents/{agent_id}/chat", body)
            if answer:
                expected = f"results: calculator: {i * 7}" if tool else f"echo: {message}"
                self.ack(
                    "tool" if tool else "chat",
                    conversation=answer["conversation_id"],
                    turn=answer["turn_id"],
                    response=answer["response"],
                    expected=expected,
                )
                conversation = answer["conversation_id"] if i % 6 != 5 else None
            await asyncio.sleep(PAUSE)

    async def requests(self, receiver: str) -> None:
        """ACL requests to ``receiver`` that wait for its ``inform`` (half call a tool)."""
        for i in range(1_000_000):
            if not self.running:
                return
            content = f'call calculator({{"expression": "{i}+1"}})' if i % 2 else f"task {i}"
            body = {
                "performative": "request",
                "receivers": [receiver],
                "content": content,
                "protocol": "fipa-request",
                "wait": 10,
            }
            if sent := await self.call("acl", "POST", "/api/v1/messages", body):
                reply = sent.get("reply") or {}
                self.ack(
                    "acl",
                    message=sent["message_id"],
                    conversation=sent["conversation_id"],
                    reply=reply.get("message_id"),
                    timed_out=sent.get("timed_out", False),
                )
            await asyncio.sleep(PAUSE)


async def running_agent(http: httpx.AsyncClient) -> str:
    body = {"name": f"fx-{uuid.uuid4().hex[:8]}", "tools": [{"name": "calculator"}]}
    created = await http.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["data"]["id"]
    started = await http.post(f"/api/v1/agents/{agent_id}/start")
    assert started.status_code == 200, started.text
    return agent_id


async def streams_current(nc: Client) -> bool:
    """Whether every stream has a leader and two current followers."""
    try:
        infos = await nc.jetstream().streams_info()
    except (nats.errors.Error, TimeoutError):
        return False
    for info in infos:
        cluster = info.cluster
        peers = (cluster.replicas or []) if cluster else []
        if not (cluster and cluster.leader and len(peers) == NODES - 1):
            return False
        if not all(peer.current for peer in peers):
            return False
    return True


async def events_leader(nc: Client) -> str:
    info = await nc.jetstream().stream_info("PARLEY_EVENTS")
    assert info.cluster is not None and info.cluster.leader is not None
    return info.cluster.leader


async def edge_ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200
    except httpx.TransportError:
        return False


class Faults:
    """Kills one part at a time under the load and measures its recovery."""

    def __init__(self, launched: Launcher, load: Load, nc: Client) -> None:
        self.launched, self.load, self.nc = launched, load, nc
        self.report: list[str] = []

    async def kill(self, part: str) -> None:
        """Kill ``part``; wait until it is restarted (a node: until every stream's replicas
        are current again; an edge: until it is ready) and every kind of request has been
        acknowledged twice since."""
        load, launched = self.load, self.launched
        failed_before = Counter(load.failed)
        load.errors.clear()
        port = launched.port_of(part) if part.startswith("edge") else None
        killed = launched.kill(part)
        name = part.split("#")[0]
        key = name if name.startswith("nats") else rf"{name}(?:-2)?"
        await asyncio.to_thread(
            launched.wait_for, rf"^parley: {key} restarted \(pid \d+\)", 60, killed.mark
        )
        restarted = time.monotonic() - killed.at

        async def back() -> bool:
            if name.startswith("nats"):
                return await streams_current(self.nc)
            return port is None or await edge_ready(port)

        await eventually(back, within=90, every=0.1)
        ready = time.monotonic() - killed.at

        async def served() -> bool:
            return all(len(load.since(kind, killed.at + ready)) >= 2 for kind in KINDS)

        await eventually(served, within=90, every=0.1)
        settled = time.monotonic()
        gaps = {kind: _longest_gap(load, kind, killed.at, settled) for kind in KINDS}
        failures = dict(load.failed - failed_before)
        self.report.append(
            f"{part}: restarted {restarted:.2f} s after the kill, back (replicas current / "
            f"edge ready) {ready:.2f} s; longest wait for an ack "
            + ", ".join(f"{kind} {gap:.2f} s" for kind, gap in gaps.items())
            + f"; failures {failures}"
        )
        self.report += [f"  first {what}: {body}" for what, body in load.errors.items()]


def _longest_gap(load: Load, kind: str, start: float, end: float) -> float:
    """The longest time in ``[start, end]`` without an acknowledged ``kind``."""
    times = [start, *(at for at in load.since(kind, start) if at <= end), end]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def stored_once(events: list[Event], acked: Acked) -> list[str]:
    """What is wrong with the store against what was acknowledged ([] when nothing)."""
    problems: list[str] = []
    ids = Counter(e.id for e in events)
    problems += [f"event id {i} stored {n} times" for i, n in ids.items() if n > 1]
    by_stream: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_stream[event.stream].append(event)
    for stream, found in by_stream.items():
        versions = [e.version for e in found]
        if sorted(versions) != list(range(1, len(found) + 1)):
            problems.append(f"{stream}: versions {versions} are not 1..{len(found)} once each")
    calls = Counter(
        (e.type != "tool.called", e.stream, e.data["run_id"], e.data["step"], e.data["call_id"])
        for e in events
        if e.type in ("tool.called", "tool.completed", "tool.failed")
    )
    problems += [f"tool call {c} called/ended {n} times" for c, n in calls.items() if n > 1]

    def count(stream: str, kind: str, needle: str) -> int:
        return sum(
            e.type == kind and needle in json.dumps(e.data) for e in by_stream.get(stream, [])
        )

    def once(what: str, stream: str, kind: str, needle: str) -> None:
        if (n := count(stream, kind, needle)) != 1:
            problems.append(f"acknowledged {what}: {n} {kind} with {needle!r} in {stream}")

    created = Counter(e.data["spec"]["name"] for e in events if e.type == "agent.created")
    for _, ack in acked["create"]:
        once("create", f"agent-{ack['id']}", "agent.created", f'"name": "{ack["name"]}"')
        if created[ack["name"]] != 1:
            problems.append(f"agent name {ack['name']} created {created[ack['name']]} times")
    for _, ack in acked["patch"]:
        once("patch", f"agent-{ack['id']}", "agent.updated", ack["token"])
    for kind in ("chat", "tool"):
        for _, ack in acked[kind]:
            stream, turn = f"session-{ack['conversation']}", f'"run_id": "{ack["turn"]}"'
            once(kind, stream, "turn.completed", turn)
            if kind == "tool":
                once(kind, stream, "tool.called", turn)
            if ack["response"] != ack["expected"]:
                problems.append(f"turn {ack['turn']} answered {ack['response']!r}")
    for _, ack in acked["acl"]:
        stream = f"conversation-{ack['conversation']}"
        sent = [
            e
            for e in by_stream.get(stream, [])
            if e.type == "message.sent" and e.data["message"]["message_id"] == ack["message"]
        ]
        if len(sent) != 1:  # (the reply's receipt names the request's id too)
            problems.append(f"acknowledged request: {len(sent)} message.sent of it in {stream}")
        replies = [
            e.data["message"]
            for e in by_stream.get(stream, [])
            if e.type == "message.sent" and e.data["message"].get("in_reply_to") == ack["message"]
        ]
        answered = [r["message_id"] for r in replies if r["performative"] == "inform"]
        if len(replies) != 1 or answered != [ack["reply"] or answered[0]]:
            problems.append(
                f"request {ack['message']} (answered {ack['reply']}, timed out "
                f"{ack['timed_out']}) has the replies {replies} in the store"
            )
    return problems


def view_paths(acked: Acked) -> list[tuple[str, str]]:
    """The GETs compared between the live edges and a fresh one."""
    agents = {ack["id"] for kind in ("create", "patch") for _, ack in acked[kind]}
    sessions = {ack["conversation"] for kind in ("chat", "tool") for _, ack in acked[kind]}
    conversations = {ack["conversation"] for _, ack in acked["acl"]}
    paths = ["/api/v1/agents?limit=200", "/api/v1/sessions?limit=200"]
    paths += [f"/api/v1/agents/{a}" for a in sorted(agents)]
    paths += [f"/api/v1/sessions/{s}" for s in sorted(sessions)]
    paths += [f"/api/v1/messages?conversation_id={c}&limit=200" for c in sorted(conversations)]
    return [("default", path) for path in paths]


async def test_kills_under_load_lose_duplicate_and_repeat_nothing(
    tmp_path: Path,
) -> None:
    with running(tmp_path / "state", "--cluster", env=UNLIMITED) as launched:
        headers = {"X-API-Key": launched.admin_key()}
        ports = (launched.edge_port, launched.edge_port + 1)
        edges = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", headers=headers, timeout=20)
            for p in ports
        ]
        # credentials as options, not in the URLs: the nodes the client learns of get them too
        password = (launched.state / "nats" / f"{SERVICES_USER}.password").read_text().strip()
        nc = await nats.connect(
            servers=[f"nats://127.0.0.1:{launched.nats_port + i}" for i in range(NODES)],
            user=SERVICES_USER,
            password=password,
            max_reconnect_attempts=-1,
        )
        try:
            await under_faults(launched, edges, nc, tmp_path)
        finally:
            for http in edges:
                await http.aclose()
            await nc.close()


async def under_faults(
    launched: Launcher, edges: list[httpx.AsyncClient], nc: Client, tmp_path: Path
) -> None:
    talkers = [await running_agent(edges[0]) for _ in range(2)]
    receiver = await running_agent(edges[1])
    load = Load(edges)
    clients = [
        *(load.agents() for _ in range(2)),
        *(load.chat(agent) for agent in talkers),
        load.requests(receiver),
    ]
    tasks = [asyncio.create_task(client) for client in clients]
    faults = Faults(launched, load, nc)
    try:
        await eventually(
            lambda: asyncio.sleep(0, all(load.acked[kind] for kind in KINDS)), within=60
        )
        await faults.kill(await events_leader(nc))
        for name in KILLED:
            await faults.kill(name)
    finally:
        load.running = False
        await asyncio.gather(*tasks)
    totals = {kind: len(load.acked[kind]) for kind in KINDS}
    faults.report.append(f"acknowledged {totals}; failures {dict(load.failed)}")
    (tmp_path / "recovery.txt").write_text("\n".join(faults.report) + "\n")
    print("\ncluster faults:\n  " + "\n  ".join(faults.report))

    await eventually(lambda: streams_current(nc), within=60, every=0.2)
    nats_url = launched.nats_urls()[0]
    problems: list[str] = []

    async def consistent() -> bool:  # a request that timed out is still answered, later
        problems[:] = stored_once(await export_events(nats_url), load.acked)
        return not problems

    with contextlib.suppress(AssertionError):
        await eventually(consistent, within=30, every=2.0)
    assert problems == []

    paths = view_paths(load.acked)
    port = free_ports(1)
    fresh = launched.start_edge(port, NODES)
    try:
        await eventually(lambda: edge_ready(port), within=90, every=0.2)
        headers = dict(edges[0].headers)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=20
        ) as rebuilt:
            views: list[dict[str, Any]] = []

            async def equal() -> bool:
                views[:] = [await capture_views(c, paths) for c in (*edges, rebuilt)]
                return views[0] == views[1] == views[2]

            try:
                await eventually(equal, within=60, every=1.0)
            except AssertionError:
                differ = [k for k in views[0] if not views[0][k] == views[1][k] == views[2][k]]
                raise AssertionError(
                    f"views differ at {differ[:5]}:\n"
                    + "\n".join(json.dumps(v.get(differ[0])) for v in views)
                ) from None
            assert all(v["status"] == 200 for v in views[2].values())
    finally:
        fresh.terminate()
        fresh.wait(20)
