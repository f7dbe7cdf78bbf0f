"""Every event names the acting principal: the ``Parley-Actor`` header, ``current_actor``,
both kinds of command route (FastStream and raw nats-py) and the work queue, against a real
nats-server (one of the module's own)."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from parley.aggregates.decision import to_new_events
from parley.contracts import subjects
from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import acting_as
from parley.contracts.envelope import current_actor
from parley.contracts.envelope import valid_actor
from parley.devstack.nats import NatsServer
from parley.eventstore._codec import decode_event
from parley.kit.app import Connections
from parley.kit.app import service_app
from parley.kit.settings import ServiceSettings
from parley.kit.telemetry import carried_actor
from parley.kit.telemetry import inject
from parley.kit.workqueue import WorkQueue
from parley.kit.workqueue import ensure_work_stream

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


class _Payload(msgspec.Struct):
    n: int


def test_a_new_event_names_the_current_actor_unless_given_one() -> None:
    assert NewEvent(type="a.b", subject="s", data={}).actor is None
    with acting_as("key:alice"):
        assert NewEvent(type="a.b", subject="s", data={}).actor == "key:alice"
        assert NewEvent(type="a.b", subject="s", data={}, actor="jwt:bob").actor == "jwt:bob"
    assert current_actor.get() is None


def test_decided_events_are_wrapped_with_the_current_actor() -> None:
    decided = [("a.happened", _Payload(1)), ("b.happened", _Payload(2))]
    with acting_as("key:alice"):
        events = to_new_events(decided, subject="s", namespace="n", source="/t", now=NOW)
        named = to_new_events(
            decided, subject="s", namespace="n", source="/t", now=NOW, actor="jwt:bob"
        )
    assert [e.actor for e in events] == ["key:alice", "key:alice"]
    assert [e.actor for e in named] == ["jwt:bob", "jwt:bob"]
    assert to_new_events(decided, subject="s", namespace="n", source="/t", now=NOW)[0].actor is None


def test_an_event_stored_before_actors_were_named_still_decodes_with_no_actor() -> None:
    stored = (
        b'{"id":"0193","source":"/parley/registry","type":"agent.created","subject":"a1",'
        b'"time":"2025-01-02T03:04:05Z","data":{"name":"x"},"stream":"agent-a1","version":1,'
        b'"position":7,"namespace":"default","specversion":"1.0",'
        b'"datacontenttype":"application/json","correlationid":null,"causationid":null,'
        b'"traceparent":null}'
    )
    event = decode_event(stored)
    assert event.actor is None and event.data == {"name": "x"} and event.position == 7


def test_inject_carries_the_current_actor_and_keeps_one_already_named() -> None:
    assert ACTOR_HEADER not in inject()
    with acting_as("key:alice"):
        assert inject({"other": "kept"}) == {"other": "kept", ACTOR_HEADER: "key:alice"}
        assert inject({ACTOR_HEADER: "key:edge"})[ACTOR_HEADER] == "key:edge"


@pytest.mark.parametrize(
    ("headers", "actor"),
    [
        (None, None),
        ({}, None),
        ({ACTOR_HEADER: "key:0193abc"}, "key:0193abc"),
        (
            {ACTOR_HEADER: "jwt:https://idp.example/|user@example.com"},
            "jwt:https://idp.example/|user@example.com",
        ),
        ({ACTOR_HEADER: ""}, None),
        ({ACTOR_HEADER: "key:x\nforged"}, None),
        ({ACTOR_HEADER: "k" * 257}, None),
        ({"parley-actor-other": "key:x"}, None),
    ],
)
def test_the_actor_header_is_read_only_when_well_formed(
    headers: dict[str, str] | None, actor: str | None
) -> None:
    assert carried_actor(headers) == actor
    assert valid_actor(actor) == actor


async def test_tasks_started_while_acting_keep_the_actor() -> None:
    async def later() -> str | None:
        await asyncio.sleep(0)
        return current_actor.get()

    with acting_as("key:alice"):
        task = asyncio.create_task(later())
    assert current_actor.get() is None
    assert await task == "key:alice"


# --- both kinds of command route, on the session's nats-server ----------------------------


class _Ask(msgspec.Struct, kw_only=True):
    forward_to: str | None = None
    """Another service to send the same command to, as a service sends a command on."""


class _Seen(msgspec.Struct, kw_only=True):
    actor: str | None
    in_task: str | None
    event_actor: str | None
    forwarded: str | None = None


class _Failed(msgspec.Struct):
    error: str


_encode = msgspec.json.Encoder().encode
_decode_seen = msgspec.json.Decoder(_Seen).decode


async def _see(nc: Client, command: _Ask) -> _Seen:
    async def later() -> str | None:
        await asyncio.sleep(0.01)
        return current_actor.get()

    in_task = await asyncio.create_task(later())
    forwarded = None
    if command.forward_to:
        msg = await nc.request(
            subjects.cmd(command.forward_to, "see"), _encode(_Ask()), timeout=5, headers=inject()
        )
        forwarded = _decode_seen(msg.data).actor
    return _Seen(
        actor=current_actor.get(),
        in_task=in_task,
        event_actor=NewEvent(type="test.seen", subject="s", data={}).actor,
        forwarded=forwarded,
    )


async def _start(connections: Connections) -> Client:
    return connections.nc


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of this module's own: the services open the default event stream,
    whose subjects would overlap the contract suite's stream on the session's server."""
    server = NatsServer(Path(tmp_path_factory.mktemp("actor-nats"))).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
async def services(own_nats: str) -> AsyncIterator[dict[str, str]]:
    """Two running services with a ``see`` command: one on FastStream routes, one raw."""
    names = {kind: f"actor{kind}{uuid.uuid4().hex[:8]}" for kind in ("faststream", "raw")}
    apps = [
        service_app(
            name,
            ServiceSettings(nats_url=own_nats, log_level="WARNING"),
            routes={"see": (_Ask, _see)},
            start=_start,
            reply_error=lambda exc: _Failed(repr(exc)),
            description="actor propagation test",
            raw=kind == "raw",
        )
        for kind, name in names.items()
    ]
    for app in apps:
        await app.start()
    try:
        yield names
    finally:
        for app in apps:
            await app.stop()
        logging.getLogger().handlers.clear()


@pytest.fixture
async def client(own_nats: str) -> AsyncIterator[Client]:
    nc = await nats.connect(own_nats)
    yield nc
    await nc.close()


async def _ask(
    nc: Client, service: str, headers: dict[str, str] | None = None, **body: str
) -> _Seen:
    msg = await nc.request(
        subjects.cmd(service, "see"), _encode(_Ask(**body)), timeout=10, headers=headers
    )
    return _decode_seen(msg.data)


@pytest.mark.parametrize("kind", ["faststream", "raw"])
async def test_a_command_route_acts_as_the_principal_of_the_actor_header(
    services: dict[str, str], client: Client, kind: str
) -> None:
    seen = await _ask(client, services[kind], {ACTOR_HEADER: "key:test-actor"})
    assert (seen.actor, seen.in_task, seen.event_actor) == ("key:test-actor",) * 3


@pytest.mark.parametrize("kind", ["faststream", "raw"])
async def test_a_command_without_the_header_acts_for_nobody_whoever_came_before(
    services: dict[str, str], client: Client, kind: str
) -> None:
    results = await asyncio.gather(
        *(
            _ask(client, services[kind], {ACTOR_HEADER: f"key:k{i}"} if i % 2 else None)
            for i in range(20)
        )
    )
    for i, seen in enumerate(results):
        expected = f"key:k{i}" if i % 2 else None
        assert (seen.actor, seen.in_task, seen.event_actor) == (expected,) * 3
    malformed = await _ask(client, services[kind], {ACTOR_HEADER: "key:x\tforged"})
    assert malformed.actor is None


@pytest.mark.parametrize(("first", "then"), [("faststream", "raw"), ("raw", "faststream")])
async def test_a_chain_of_commands_keeps_naming_the_principal_who_started_it(
    services: dict[str, str], client: Client, first: str, then: str
) -> None:
    seen = await _ask(
        client, services[first], {ACTOR_HEADER: "jwt:carol"}, forward_to=services[then]
    )
    assert (seen.actor, seen.forwarded) == ("jwt:carol", "jwt:carol")


async def test_queued_work_acts_for_the_principal_who_queued_it(
    own_nats: str, client: Client
) -> None:
    kind = f"actor{uuid.uuid4().hex[:8]}"
    stream, subject = f"ACTORTEST_{kind.upper()}", subjects.work(kind)
    js = client.jetstream()
    await ensure_work_stream(js, stream, [subject])
    seen: dict[bytes, str | None] = {}
    done = asyncio.Event()

    async def handle(msg: Msg) -> None:
        seen[msg.data] = current_actor.get()
        await msg.ack()
        if len(seen) == 2:
            done.set()

    queue = WorkQueue(
        js, stream=stream, durable=kind, filter_subject=subject, handle=handle, ack_wait=30
    )
    await queue.start()
    try:
        with acting_as("key:queuer"):
            await js.publish(subject, b"named", stream=stream, headers=inject())
        await js.publish(subject, b"anonymous", stream=stream, headers=inject())
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await queue.stop()
    assert seen == {b"named": "key:queuer", b"anonymous": None}
