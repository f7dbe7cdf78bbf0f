"""``just bench``: start a private nats-server and stack in a temp dir and print every figure.

The bench's own clients and feeds run on the loop every Parley process runs on
(:func:`parley.kit.loop.run`: uvloop, the collector tuned): the projection rebuild is a
Parley process's feed, and a load generator that spends less CPU leaves the 2 cores to what
is measured.
"""

import argparse
import tempfile
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path

from bench import acl
from bench import auth
from bench import console
from bench import deployments
from bench import edge
from bench import events
from bench import eventstore
from bench import layouts
from bench import messaging
from bench import runtime
from bench import tasks
from bench import wire
from bench._stack import running
from bench._stats import watching
from parley.devstack.nats import NatsServer
from parley.kit.loop import run

LIMITS = {
    "PARLEY_RATE_LIMIT": "1000000/1s",  # counted (its cost is in the figures), never refused
    "PARLEY_MODEL_RATE_LIMIT": "1000000/1s",
    "PARLEY_QUOTA_MAX_AGENTS": "0",  # thousands of agents in one namespace
}
OPEN = {**LIMITS, "PARLEY_AUTH": "off"}
"""The figures measure the platform, not the key check (``bench --only auth`` measures that)."""


async def _wire(tmp: Path, scale: int) -> None:
    print("== the wire (one nats-server, JetStream R1; loopback) ==", flush=True)
    server = NatsServer(tmp / "wire").start()
    try:
        with watching({"nats": server.process.pid} if server.process else {}):
            await wire.request_reply(server.url, count=8_000 // scale)
            await wire.jetstream_appends(server.url, count=8_000 // scale)
    finally:
        server.stop()


async def _eventstore(tmp: Path, scale: int) -> None:
    print("== event store (JetStream, R1, one nats-server) ==", flush=True)
    server = NatsServer(tmp / "store").start()
    try:
        await eventstore.append_rate(server.url, count=5_000 // scale)
        await eventstore.rebuild_rate(server.url, count=100_000 // scale)
    finally:
        server.stop()


async def _edge(tmp: Path, scale: int) -> None:
    print("== edge (one edge worker, registry, nats-server; loopback) ==", flush=True)
    async with running(tmp / "stack", OPEN) as stack:
        await edge.create_agents(stack.edge_url, count=4_000 // scale)


async def _runtime(tmp: Path, scale: int) -> None:
    print(
        "== runtime (edge, registry, runtime, nats-server; offline/local provider) ==", flush=True
    )
    provider = await runtime.LocalProvider().start()
    try:
        env = {**OPEN, "PARLEY_OPENAI_COMPATIBLE_BASE_URL": provider.url}
        async with running(tmp / "runtime", env) as stack:
            await runtime.chat_turns(stack.edge_url, turns=2_000 // scale)
            await runtime.first_token(stack.edge_url, provider.url, samples=300 // scale)
            await runtime.executions(stack.edge_url, count=1_000 // scale)
    finally:
        await provider.stop()


async def _messaging(tmp: Path, scale: int) -> None:
    print("== messaging (edge, registry, runtime, messaging, nats-server) ==", flush=True)
    async with running(tmp / "messaging", OPEN) as stack:
        await messaging.one_way(stack.edge_url, stack.nats_url, count=4_000 // scale)
        await acl.round_trips(stack.edge_url, stack.nats_url, count=1_000 // scale)


async def _tasks(tmp: Path, scale: int) -> None:
    print("== tasks (edge, registry, runtime, messaging, tasks, nats-server) ==", flush=True)
    async with running(tmp / "tasks", OPEN) as stack:
        await tasks.rounds(stack.edge_url, stack.nats_url, repeat=max(3, 20 // scale))


async def _events(tmp: Path, scale: int) -> None:
    print("== event fan-out (edge, registry, nats-server; /ws) ==", flush=True)
    async with running(tmp / "events", OPEN) as stack:
        await events.fan_out(stack.edge_url, subscribers=1_000 // scale, rate=100, seconds=5)
        await events.idle_subscriptions(
            stack.edge_url, stack.processes["edge"].pid, count=10_000 // scale
        )


async def _auth(tmp: Path, scale: int) -> None:
    print("== auth (edge with and without the key check, registry, nats-server) ==", flush=True)
    async with running(tmp / "auth", LIMITS) as stack:  # the key check on, no quotas
        await auth.auth_overhead(stack, count=2_000 // scale)


async def _deployment(tmp: Path, scale: int) -> None:
    print("== deployment (the whole stack; offline provider) ==", flush=True)
    deployments.routing(count=200_000 // scale)
    async with running(tmp / "deployment", OPEN) as stack:
        await deployments.rollback(stack.edge_url, stack.nats_url, repeat=max(10, 100 // scale))


async def _console(tmp: Path, scale: int) -> None:
    print("== console (edge, registry, runtime, nats-server; headless Chromium) ==", flush=True)
    async with running(tmp / "console", OPEN) as stack:
        await console.fleet_page(stack.edge_url, "bench-fleet", agents=1_000 // scale)
        await console.live_view(stack.edge_url, "bench-live", rate=100, seconds=10 / scale)


# The other groups measure the platform, not the key check: their loopback stacks run with
# authentication off (`auth` above gives its cost).
GROUPS: dict[str, Callable[[Path, int], Awaitable[None]]] = {
    "wire": _wire,
    "eventstore": _eventstore,
    "edge": _edge,
    "runtime": _runtime,
    "messaging": _messaging,
    "tasks": _tasks,
    "events": _events,
    "auth": _auth,
    "deployment": _deployment,
    "console": _console,
}
"""Each group of figures, in the order they run."""


async def main(quick: bool, only: str | None, against: str | None = None) -> None:
    scale = 10 if quick else 1
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        if against is not None:
            return await layouts.compare(Path(tmp), OPEN, scale, against)
        for name, group in GROUPS.items():
            if only in (None, name) or name == "wire":  # every run measures the wire too
                await group(Path(tmp), scale)
        wire.against_the_wire()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke run")
    parser.add_argument(
        "--only",
        choices=list(GROUPS),
        help="one group of figures",
    )
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--cluster",
        action="store_const",
        const="cluster",
        dest="against",
        help="edge and ACL figures: one node against three",
    )
    layout.add_argument(
        "--combined",
        action="store_const",
        const="combined",
        dest="against",
        help="edge, ACL, chat and webhook figures: a process per service against one in all",
    )
    args = parser.parse_args()
    run(main(args.quick, args.only, args.against))
