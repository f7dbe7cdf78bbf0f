"""Helpers shared by the end-to-end tests (importable: `tests/` is on sys.path)."""

import nats

from parley.contracts.envelope import Event
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

__all__ = ["stream_events"]


async def stream_events(stack: Stack, stream: str) -> list[Event]:
    """Every event of one stream, read straight from the stack's event store."""
    nc = await nats.connect(stack.nats_url)
    try:
        store = await open_store(backend="jetstream", nats_url=stack.nats_url, nc=nc)
        try:
            return await store.read(stream)
        finally:
            await store.close()
    finally:
        await nc.close()
