"""The work queue (:class:`parley.kit.workqueue.WorkQueue`) against a real nats-server: it
takes every item once, holds no more than its concurrency, costs no pull request per item
(its pull requests stay open on the server), and asks again as soon as its process's
:class:`~parley.kit.needs.Keeper` finds it back after the server was killed and restarted
(which forgot the open requests without a word)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo
from tests_support import eventually

from parley.devstack.nats import NatsServer
from parley.kit import workqueue
from parley.kit.needs import Keeper
from parley.kit.workqueue import WorkQueue
from parley.kit.workqueue import ensure_work_stream


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


async def _stream(client: Client) -> tuple[str, str]:
    """A work-queue stream of this test's own and its subject."""
    kind = uuid.uuid4().hex[:10]
    stream, subject = f"WQTEST_{kind.upper()}", f"wqtest.{kind}"
    await ensure_work_stream(client.jetstream(), stream, [subject])
    return stream, subject


async def test_a_trickle_of_items_is_taken_without_a_pull_request_per_item(
    client: Client,
) -> None:
    stream, subject = await _stream(client)
    js = client.jetstream()
    requests = 0

    async def count(msg: Msg) -> None:
        nonlocal requests
        requests += 1

    spy = await client.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.workers", cb=count)
    handled: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(msg: Msg) -> None:
        await msg.ack()
        handled.put_nowait(msg.data)

    queue = WorkQueue(
        js, stream=stream, durable="workers", filter_subject=subject, handle=handle, ack_wait=30
    )
    await queue.start()
    try:
        items = [f"item {i}".encode() for i in range(40)]
        for item in items:  # one at a time: each is taken before the next is queued
            await js.publish(subject, item, stream=stream)
            assert await asyncio.wait_for(handled.get(), 10) == item
    finally:
        await queue.stop()
        await spy.unsubscribe()
    # fetching asked twice per item (a no-wait probe, then a waiting request): 80 here
    assert requests < 20


async def test_a_work_queue_holds_no_more_items_than_its_concurrency(client: Client) -> None:
    stream, subject = await _stream(client)
    js = client.jetstream()
    release, full, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    running: set[bytes] = set()
    done: list[bytes] = []
    items = {f"item {i}".encode() for i in range(20)}

    async def handle(msg: Msg) -> None:
        running.add(msg.data)
        if len(running) == 3:
            full.set()
        await release.wait()
        running.discard(msg.data)
        done.append(msg.data)
        await msg.ack()
        if len(done) == len(items):
            finished.set()

    queue = WorkQueue(
        js,
        stream=stream,
        durable="workers",
        filter_subject=subject,
        handle=handle,
        ack_wait=30,
        concurrency=3,
    )
    await queue.start()
    try:
        for item in items:
            await js.publish(subject, item, stream=stream)
        await asyncio.wait_for(full.wait(), 10)
        await asyncio.sleep(0.5)  # room for any extra delivery to arrive
        info: ConsumerInfo = await js.consumer_info(stream, "workers")
        assert len(running) == 3
        assert info.num_ack_pending == 3  # delivered to this worker: only what it runs
        release.set()
        await asyncio.wait_for(finished.wait(), 10)
    finally:
        release.set()
        await queue.stop()
    assert sorted(done) == sorted(items)  # every item once


async def test_after_a_server_restart_the_keeper_has_the_queue_ask_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests not heard of for an hour: only the keeper's word brings the queue back here.
    monkeypatch.setattr(workqueue, "_LOST_S", 3600.0)
    server = await asyncio.to_thread(NatsServer(tmp_path / "nats").start)
    keeper = Keeper(check_every=0.5)
    nc = await nats.connect(
        server.url,
        reconnected_cb=keeper.reconnected,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    handled: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(msg: Msg) -> None:
        await msg.ack()
        handled.put_nowait(msg.data)

    js = nc.jetstream()
    queue = WorkQueue(
        js,
        stream="WQRESTART",
        durable="workers",
        filter_subject="wqrestart",
        handle=handle,
        ack_wait=30,
    )
    try:
        keeper.open(nc)
        await keeper.need(*queue.stream_and_consumer(["wqrestart"]))
        await queue.start()
        keeper.start()
        await js.publish("wqrestart", b"before", stream="WQRESTART")
        assert await asyncio.wait_for(handled.get(), 10) == b"before"

        assert server.process is not None
        server.process.kill()  # SIGKILL: the open pull requests go without a word
        server.process.wait()
        await asyncio.to_thread(server.start)
        # reconnected, the consumer found in place
        assert await eventually(lambda: _ready(keeper), within=30)
        await js.publish("wqrestart", b"after", stream="WQRESTART")

        assert await asyncio.wait_for(handled.get(), 30) == b"after"
    finally:
        await queue.stop()
        await keeper.stop()
        await nc.close()
        server.stop()


async def _ready(keeper: Keeper) -> bool:
    return keeper.readiness().ready
