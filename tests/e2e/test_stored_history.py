"""A stack started on a store written by an earlier version serves the views it served then.

``tests/data/history-v1.ndjson`` holds every event a representative workload stored, and
``tests/data/views-v1.json`` every view the edge served over it, both recorded by
``tests/data/make_history.py`` with the code of their day. Here the events are appended into
a fresh store exactly as recorded (same ids, streams, versions, positions, data), today's
stack starts on that store, and each view must be served identically: today's folds read
yesterday's event shapes.
"""

import asyncio
import json
from pathlib import Path

import msgspec
import pytest
from tests_support import capture_views
from tests_support import edge_client
from tests_support import replay_events
from tests_support import view_differences

from parley.contracts.envelope import Event
from parley.devstack.nats import NatsServer
from parley.devstack.stack import Stack

DATA = Path(__file__).resolve().parents[1] / "data"
HISTORY = DATA / "history-v1.ndjson"
VIEWS = DATA / "views-v1.json"
CATCH_UP_S = 30.0


def _recorded() -> tuple[list[Event], dict[str, dict]]:
    events = [msgspec.json.decode(line, type=Event) for line in HISTORY.read_bytes().splitlines()]
    return events, json.loads(VIEWS.read_text())


def _request(key: str) -> tuple[str, str]:
    namespace, path = key.split(" ", 1)
    return namespace, path


@pytest.mark.timeout(180)
async def test_a_stack_on_a_stored_history_serves_the_views_recorded_with_it(tmp_path) -> None:
    events, recorded = _recorded()
    assert [e.position for e in events] == list(range(1, len(events) + 1))

    nats = NatsServer(tmp_path / "nats").start()  # the stack's store dir, before the stack
    try:
        await replay_events(nats.url, events)
    finally:
        await asyncio.to_thread(nats.stop)

    stack = Stack(tmp_path)
    await asyncio.to_thread(stack.start)
    try:
        async with edge_client(stack, timeout=10) as client:
            requests = [_request(key) for key in recorded]
            # The projections catch up on their own: read until they have, or time runs out.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CATCH_UP_S
            while True:
                served = await capture_views(client, requests)
                if not view_differences(recorded, served) or loop.time() > deadline:
                    break
                await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(stack.stop)

    differences = view_differences(recorded, served)
    assert not differences, "\n".join(differences)
