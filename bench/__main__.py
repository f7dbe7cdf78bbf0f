"""``just bench``: start a private stack in a temp dir and print every figure."""

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench import edge, eventstore
from parley.devstack.nats import NatsServer
from parley.devstack.stack import Stack


async def main(quick: bool) -> None:
    scale = 10 if quick else 1
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        print("== event store (JetStream, R1, one nats-server) ==", flush=True)
        server = NatsServer(Path(tmp) / "store").start()
        try:
            await eventstore.append_rate(server.url, count=5_000 // scale)
            await eventstore.rebuild_rate(server.url, count=100_000 // scale)
        finally:
            server.stop()

        print("== edge (one edge worker, registry, nats-server; loopback) ==", flush=True)
        stack = Stack(Path(tmp) / "stack")
        await asyncio.to_thread(stack.start)
        try:
            await edge.create_agents(stack.edge_url, count=2_000 // scale)
        finally:
            await asyncio.to_thread(stack.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the work, for a smoke run")
    asyncio.run(main(parser.parse_args().quick))
