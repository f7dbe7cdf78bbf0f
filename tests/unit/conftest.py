"""Fixtures shared by the unit tests: the registry's command table over an in-memory store,
and two NATS connections standing for two processes."""

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client

from parley.eventstore.memory import MemoryEventStore
from parley.registry.handlers import Registry


@pytest.fixture
def store() -> MemoryEventStore:
    """An empty in-memory event store."""
    return MemoryEventStore()


@pytest.fixture
def registry(store: MemoryEventStore) -> Registry:
    """The registry's handlers over :func:`store`."""
    return Registry(store)


@pytest.fixture
async def connections(nats_url: str) -> AsyncIterator[list[Client]]:
    """Two connections to the test NATS server (two processes sharing a bucket)."""
    opened = [await nats.connect(nats_url) for _ in range(2)]
    yield opened
    for nc in opened:
        await nc.close()
