"""The wire under Parley, measured in the same run: raw NATS request/reply (a responder in
its own process, like a service) and JetStream appends with an expected subject sequence
(how every Parley event is appended). Parley's figures are printed as multiples of these
at the end of the run (:func:`against_the_wire`)."""

import asyncio
import sys
import uuid

import nats
from nats.js.api import StorageType
from nats.js.api import StreamConfig

from bench._stats import RESULTS
from bench._stats import measure

__all__ = ["against_the_wire", "jetstream_appends", "request_reply"]

REQUEST_REPLY = "NATS request/reply (the wire)"
APPEND = "JetStream append, expected subject sequence (the wire)"
_SUBJECT = "bench.wire.echo"
_RESPONDER = f"""
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    async def echo(msg):
        await msg.respond(msg.data)
    await nc.subscribe({_SUBJECT!r}, cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


async def request_reply(nats_url: str, count: int = 5_000, in_flight: int = 64) -> None:
    """Round trips to a responder in another process, sequential and ``in_flight`` at once."""
    responder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RESPONDER, nats_url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert responder.stdout is not None
        await responder.stdout.readline()  # "ready"
        nc = await nats.connect(nats_url)
        try:

            async def trip(i: int) -> None:
                await nc.request(_SUBJECT, b"ping", timeout=5)

            await measure(REQUEST_REPLY, trip, count, in_flight)
        finally:
            await nc.close()
    finally:
        responder.terminate()
        await responder.wait()


async def jetstream_appends(nats_url: str, count: int = 5_000, in_flight: int = 256) -> None:
    """Appends of one message to a new subject each, expecting it empty (a new stream)."""
    nc = await nats.connect(nats_url)
    name = f"BENCH_WIRE_{uuid.uuid4().hex[:8]}"
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=name, subjects=[f"{name}.>"], storage=StorageType.FILE)
        )
        body = b'{"type":"bench.happened","data":{"i":1}}'

        async def append(i: int) -> None:
            headers = {"Nats-Expected-Last-Subject-Sequence": "0", "Nats-Msg-Id": uuid.uuid4().hex}
            ack = await nc.request(f"{name}.{uuid.uuid4().hex}", body, headers=headers, timeout=5)
            if b'"error"' in ack.data:
                raise RuntimeError(ack.data.decode())

        await measure(APPEND, append, count, in_flight)
        await js.delete_stream(name)
    finally:
        await nc.close()


def against_the_wire() -> None:
    """Each Parley figure of the run as a multiple of the wire's: its p50 against one NATS
    round trip, its rate against the round trips at 64 in flight."""
    single = RESULTS.get(f"{REQUEST_REPLY}, sequential")
    many = RESULTS.get(f"{REQUEST_REPLY}, 64 in flight")
    if single is None or many is None or single.p50 is None:
        return
    print("== Parley against the wire (NATS request/reply, same run) ==", flush=True)
    for name, figure in RESULTS.items():
        if "(the wire)" in name or not figure.rate:
            continue
        line = f"{name:<58} rate {many.rate / figure.rate:>8,.1f}× under round trips at 64"
        if figure.p50 is not None:
            line += f"  p50 {figure.p50 / single.p50:>7,.1f}× one round trip"
        print(line, flush=True)
