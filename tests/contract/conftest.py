"""The event store contract suite runs once per backend."""

import os
from collections.abc import AsyncIterator

import pytest

from parley.eventstore import EventStore
from parley.eventstore import open_store
from parley.eventstore.memory import MemoryEventStore

MAX_EVENT_BYTES = 64 * 1024  # test_eventstore.py relies on this limit


@pytest.fixture(params=["memory", "jetstream", "kurrentdb"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    """An event store of each backend; KurrentDB only when PARLEY_KURRENTDB_URL is set."""
    if request.param == "memory":
        opened: EventStore = MemoryEventStore(max_event_bytes=MAX_EVENT_BYTES)
    elif request.param == "kurrentdb":
        url = os.environ.get("PARLEY_KURRENTDB_URL")
        if not url:
            pytest.skip("KurrentDB contract tests skipped: set PARLEY_KURRENTDB_URL")
        opened = await open_store(
            backend="kurrentdb", kurrentdb_url=url, max_event_bytes=MAX_EVENT_BYTES
        )
    else:
        opened = await open_store(
            backend="jetstream",
            nats_url=request.getfixturevalue("nats_url"),
            stream_name="PARLEY_CONTRACT",
            max_event_bytes=MAX_EVENT_BYTES,
        )
    yield opened
    await opened.close()
