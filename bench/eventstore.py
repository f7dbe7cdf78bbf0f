"""Event store figures: raw append rate, and projection rebuild rate from 100,000 events."""

import asyncio
import uuid

from bench._stats import Timer
from bench._stats import from_one_queue
from bench._stats import one_at_a_time
from bench._stats import report

__all__ = ["append_rate", "rebuild_rate"]
from parley.contracts.envelope import NewEvent
from parley.eventstore import NO_STREAM
from parley.eventstore.factory import open_store


def _event(i: int) -> NewEvent:
    return NewEvent(
        type="bench.happened",
        subject=f"s{i}",
        data={"i": i, "name": f"agent-{i}", "labels": {"team": "bench"}},
    )


async def append_rate(nats_url: str, count: int = 5_000, in_flight: int = 64) -> None:
    """Appends of one event each: sequential, then ``in_flight`` concurrent writers."""
    store = await open_store(nats_url=nats_url)

    async def append_new(i: int) -> None:
        await store.append(f"bench-{uuid.uuid4().hex}", [_event(i)], NO_STREAM)

    try:
        latencies, seconds = await one_at_a_time(append_new, count)
        report(
            "event store append (new stream, expected version), sequential",
            count,
            seconds,
            latencies,
        )

        stream = f"bench-{uuid.uuid4().hex}"
        version = 0
        with Timer() as t:
            for i in range(count):
                version = (await store.append(stream, [_event(i)], version)).version
        report("event store append to one stream, expected version, sequential", count, t.seconds)

        latencies, seconds = await from_one_queue(append_new, count, in_flight)
        report(f"event store append, {in_flight} concurrent writers", count, seconds, latencies)
    finally:
        await store.close()


async def rebuild_rate(nats_url: str, count: int = 100_000) -> None:
    """Fill a store with ``count`` events, then time a subscription reading them all back."""
    store = await open_store(nats_url=nats_url)
    try:
        start_position = await store.last_position()
        chunk = 10_000
        sem = asyncio.Semaphore(256)

        async def fill(i: int) -> None:
            async with sem:
                await store.append(f"agent-{uuid.uuid4().hex}", [_event(i)], NO_STREAM)

        with Timer() as t:
            for first in range(0, count, chunk):
                await asyncio.gather(*(fill(i) for i in range(first, min(count, first + chunk))))
        report("filling the store (256 appends in flight)", count, t.seconds)

        seen = 0
        subscription = store.subscribe(start_position, categories=["agent"])
        with Timer() as t:
            async for _ in subscription:
                seen += 1
                if seen == count:
                    break
        await subscription.close()
        report("projection rebuild: subscribe from 0, decode every event", seen, t.seconds)
    finally:
        await store.close()
