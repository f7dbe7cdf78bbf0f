"""Other systems can publish: a plain nats-py client, knowing only the documented JSON.

It connects as the ``external`` NATS user, which may send the documented commands of its
namespace (``parley.ext.default.cmd.<service>.<verb>``), read its own replies and its
namespace's events (``parley.ext.default.evt.>``, live, or replayed from the
``PARLEY_EXT_EVENTS`` stream through a consumer filtered on them), and nothing else: the
server itself refuses the rest (NATS is no side door), and the services act in the subject's
namespace whatever the body says (a namespace is a wall).
"""

import asyncio
import contextlib
import gc
import json
import signal
import uuid
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig
from nats.js.api import DeliverPolicy
from tests_support import eventually
from tests_support import export_events
from tests_support import stream_events

from parley.contracts import subjects
from parley.devstack.nats import EXTERNAL_NAMESPACE
from parley.devstack.nats import EXTERNAL_USER
from parley.devstack.stack import Stack

OTHER = "other-tenant"
"""A namespace the external user does not act in."""


class External:
    """A connection as the external user, keeping the errors the server reports."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.nc: Client | None = None

    async def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    async def refused(self, subject: str, within: float = 5.0) -> str:
        """The server's permissions violation naming ``subject``, once it arrives."""
        async with asyncio.timeout(within):
            while True:
                for error in self.errors:
                    text = str(error).lower()
                    if "permissions violation" in text and f'"{subject.lower()}"' in text:
                        return text
                await asyncio.sleep(0.02)


@pytest.fixture
async def services(stack: Stack) -> AsyncIterator[Client]:
    """A connection as the services' user, to look behind the external user's back."""
    nc = await nats.connect(stack.nats_url)
    yield nc
    await nc.close()


@pytest.fixture
async def external(stack: Stack) -> AsyncIterator[External]:
    conn = External()
    conn.nc = await nats.connect(
        stack.nats.url_for(EXTERNAL_USER),
        error_cb=conn.on_error,
        allow_reconnect=False,
        inbox_prefix=subjects.ext_inbox(EXTERNAL_NAMESPACE),
    )
    yield conn
    await conn.nc.close()


async def test_a_plain_nats_client_creates_an_agent_visible_over_rest(
    external: External, client: httpx.AsyncClient
) -> None:
    # Deliberately nothing from Parley: the subject and the JSON are the documented contract.
    assert external.nc is not None
    name = f"from-nats-{uuid.uuid4().hex[:8]}"
    message = await external.nc.request(
        "parley.ext.default.cmd.registry.create_agent",
        json.dumps({"spec": {"name": name, "capabilities": ["translate"]}}).encode(),
        timeout=10,
    )
    reply = json.loads(message.data)
    assert reply["ok"] is True, reply
    assert reply["version"] == 1 and reply["position"] > 0

    agent = await _eventually_get(client, reply["agent_id"])
    assert agent["spec"]["name"] == name
    assert agent["spec"]["capabilities"] == ["translate"]
    assert agent["state"] == "created"
    assert external.errors == []


async def test_a_plain_nats_client_gets_a_validation_error_for_unknown_fields(
    external: External,
) -> None:
    assert external.nc is not None
    message = await external.nc.request(
        "parley.ext.default.cmd.registry.create_agent",
        json.dumps({"spec": {"name": "x", "colour": "red"}}).encode(),
        timeout=10,
    )
    reply = json.loads(message.data)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "VALIDATION_ERROR"
    assert "colour" in reply["error"]["message"]


async def test_the_server_refuses_an_external_event_publish(
    services: Client, external: External
) -> None:
    assert external.nc is not None
    subject, seen = await _forged_listener(services)
    await external.nc.publish(subject, b'{"type": "agent.created"}')
    await external.nc.flush()
    assert "publish" in await external.refused(subject)
    await _hears_nothing(seen)  # the server dropped it: nobody received it


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.API.INFO",  # the JetStream API: streams, KV and object stores
        "$JS.API.STREAM.MSG.GET.PARLEY_EVENTS",
        "$KV.parley-tickets.x",
        "parley.ext.default.cmd.registry.create_api_key",  # keys are made through the edge only
        "parley.ext.default.cmd.registry.revoke_api_key",
        "parley.ext.default.cmd.registry.record_api_key_use",
        "parley.work.executions",
        "parley.cmd.registry.create_agent",  # the services' own subjects: no namespace wall
        "parley.ext.other.cmd.registry.create_agent",  # another namespace's subjects
        # events: only its namespace's, only through a consumer filtered on them
        "$JS.API.CONSUMER.CREATE.PARLEY_EVENTS.mine.parley.evt.>",
        "$JS.API.CONSUMER.CREATE.PARLEY_EVENTS",
        f"$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS.mine.parley.ext.{OTHER}.evt.>",
        "$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS.mine.parley.ext.*.evt.>",
        "$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS.mine",  # no filter in the subject
        "$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS",
        "$JS.API.CONSUMER.DURABLE.CREATE.PARLEY_EXT_EVENTS.mine",
        "$JS.API.CONSUMER.MSG.NEXT.PARLEY_EXT_EVENTS.parley-ext-relay",
        "$JS.API.CONSUMER.DELETE.PARLEY_EVENTS.parley-ext-relay",
        "$JS.API.DIRECT.GET.PARLEY_EXT_EVENTS",
        "$JS.API.STREAM.MSG.GET.PARLEY_EXT_EVENTS",
    ],
)
async def test_the_server_refuses_external_requests_beyond_the_commands(
    external: External, subject: str
) -> None:
    assert external.nc is not None
    body = json.dumps({"namespace": "default", "name": "x", "roles": ["admin"]}).encode()
    with pytest.raises(NatsTimeout):  # dropped by the server: no service ever answers
        await external.nc.request(subject, body, timeout=1.0)
    assert "publish" in await external.refused(subject)


async def test_an_external_command_acts_in_its_namespace_whatever_its_body_says(
    external: External, client: httpx.AsyncClient, stack: Stack
) -> None:
    assert external.nc is not None
    name = f"walled-{uuid.uuid4().hex[:8]}"
    body = {"namespace": "other-tenant", "spec": {"name": name}}
    message = await external.nc.request(
        "parley.ext.default.cmd.registry.create_agent", json.dumps(body).encode(), timeout=10
    )
    reply = json.loads(message.data)
    assert reply["ok"] is True, reply
    agent = await _eventually_get(client, reply["agent_id"])
    assert agent["namespace"] == "default"
    elsewhere = await client.get(
        f"/api/v1/agents/{reply['agent_id']}", headers={"X-Parley-Namespace": "other-tenant"}
    )
    assert elsewhere.status_code == 404
    events = await stream_events(stack, f"agent-{reply['agent_id']}")
    assert [(e.namespace, e.actor) for e in events] == [("default", "nats:default")]


async def test_the_server_refuses_external_subscriptions_to_events(external: External) -> None:
    assert external.nc is not None
    for subject in (
        "parley.evt.>",
        f"parley.ext.{OTHER}.evt.>",
        "parley.ext.*.evt.>",
        "parley.ext.>",
        "parley.stream.>",
        "$JS.API.>",
        "_INBOX.>",
        "_INBOX_ext.other.>",
    ):
        await external.nc.subscribe(subject)
        await external.nc.flush()
        assert "subscription" in await external.refused(subject)


async def test_nats_refuses_anonymous_and_wrong_password_clients(stack: Stack) -> None:
    wrong = stack.nats.address.replace("nats://", f"nats://{EXTERNAL_USER}:not-the-password@")
    for url in (stack.nats.address, wrong):
        nc = Client()
        try:
            with pytest.raises(NatsError) as refused:
                await nc.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        finally:
            await nc.close()
            if nc._transport is not None:  # nats-py leaves a refused socket open
                nc._transport.close()
                with contextlib.suppress(ConnectionError):  # the server may reset it first
                    await nc._transport.wait_closed()
        assert "authorization violation" in str(refused.value).lower()
    gc.collect()  # an unclosed socket would warn here, in this test, not in a later one


async def test_an_external_client_reads_its_namespaces_events_live_and_from_the_start(
    external: External, client: httpx.AsyncClient
) -> None:
    assert external.nc is not None
    live = await external.nc.subscribe("parley.ext.default.evt.>")
    await external.nc.flush()
    theirs = await client.post(
        "/api/v1/agents",
        json={"name": f"theirs-{uuid.uuid4().hex[:8]}"},
        headers={"X-Parley-Namespace": OTHER},
    )
    assert theirs.status_code == 201, theirs.text
    their_id = theirs.json()["data"]["id"]
    message = await external.nc.request(
        "parley.ext.default.cmd.registry.create_agent",
        json.dumps({"spec": {"name": f"ours-{uuid.uuid4().hex[:8]}"}}).encode(),
        timeout=10,
    )
    our_id = json.loads(message.data)["agent_id"]

    # Live: its agent's event arrives, the other namespace's (stored before it) never did.
    seen = await _until_agent(live, our_id)
    assert {json.loads(m.data)["namespace"] for m in seen} == {"default"}
    assert their_id not in {json.loads(m.data)["subject"] for m in seen}
    # From the start, through a consumer of its own filter (the documented create subject).
    replay = await _replay(external.nc)
    replayed = await _until_agent(replay, our_id)
    assert {json.loads(m.data)["namespace"] for m in replayed} == {"default"}
    assert their_id not in {json.loads(m.data)["subject"] for m in replayed}
    ids = [m.headers["Nats-Msg-Id"] for m in replayed if m.headers]
    assert len(ids) == len(set(ids)) == len(replayed)
    assert external.errors == []


async def test_a_relayed_event_is_the_stored_cloudevent_with_its_trace_context(
    external: External, client: httpx.AsyncClient, services: Client
) -> None:
    assert external.nc is not None
    live = await external.nc.subscribe("parley.ext.default.evt.>")
    await external.nc.flush()
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    stream = f"relayed-{uuid.uuid4().hex[:8]}"
    posted = await client.post(
        "/api/v1/events",
        json={"type": "custom.relayed", "stream": stream, "data": {"n": 1}},
        headers={"traceparent": traceparent},
    )
    assert posted.status_code == 201, posted.text
    event_id = posted.json()["data"]["id"]
    subject = f"parley.ext.default.evt.custom.{stream}"
    relayed = await _next_on(live, subject)
    stored = await services.jetstream().get_last_msg("PARLEY_EVENTS", f"parley.evt.custom.{stream}")
    assert relayed.data == stored.data  # the same CloudEvents JSON bytes
    original = {k: v for k, v in (stored.headers or {}).items() if not k.startswith("Nats-Exp")}
    assert original["Nats-Msg-Id"] == event_id
    headers = dict(relayed.headers or {})
    assert json.loads(headers.pop("Nats-Request-Info"))["acc"] == "PARLEY"  # the server's
    assert headers == {**original, "traceparent": traceparent}


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"filter_subject": f"parley.ext.{OTHER}.evt.>"}, 10131),  # not the subject's filter
        ({"filter_subjects": [f"parley.ext.{OTHER}.evt.>"]}, 10137),
        ({"filter_subjects": ["parley.ext.default.evt.>", "parley.evt.>"]}, 10137),
    ],
)
async def test_the_server_refuses_a_consumer_whose_filter_is_not_the_permitted_one(
    external: External, config: dict, code: int
) -> None:
    assert external.nc is not None
    answer = await _create_consumer(external.nc, {"deliver_subject": "_INBOX_ext.x", **config})
    assert answer["error"]["err_code"] == code


async def test_what_an_external_consumer_delivers_stays_in_the_external_account(
    external: External, services: Client
) -> None:
    # A push consumer delivers wherever its creator says: at a services' subject someone
    # listens to, in one account, it would be a side door (into the event store, even).
    assert external.nc is not None
    forged, listener = await _forged_listener(services)
    probe = await external.nc.subscribe("_INBOX_ext.default.probe")
    for deliver in (forged, "_INBOX_ext.default.probe"):  # the probe shows they deliver
        config = {"deliver_subject": deliver, "filter_subject": "parley.ext.default.evt.>"}
        answer = await _create_consumer(external.nc, {**config, "ack_policy": "none"})
        assert "error" not in answer, answer
    await probe.next_msg(timeout=10)
    await _hears_nothing(listener)
    with pytest.raises(nats.js.errors.NotFoundError):
        await services.jetstream().get_last_msg("PARLEY_EVENTS", forged)


@pytest.mark.timeout(240)
async def test_a_restarted_relay_resumes_and_relays_every_event_once(
    external: External, client: httpx.AsyncClient, stack: Stack, services: Client
) -> None:
    assert external.nc is not None
    stack.stop_process("registry", signal.SIGKILL)  # no goodbye: a batch may be unacked
    try:
        stream = f"while-down-{uuid.uuid4().hex[:8]}"
        for n in range(20):  # stored while no relay runs: the edge appends custom events
            posted = await client.post(
                "/api/v1/events", json={"type": "custom.tick", "stream": stream, "data": {"n": n}}
            )
            assert posted.status_code == 201, posted.text
    finally:
        stack.start_process("registry")
        await _healthy(stack, "registry")
    last = f"parley.ext.default.evt.custom.{stream}"
    replay = await _replay(external.nc)
    relayed: list[Msg] = []
    # A batch the killed relay left unacknowledged comes back after the ack wait (30 s).
    async with asyncio.timeout(60):
        while not relayed or json.loads(relayed[-1].data)["data"] != {"n": 19}:
            msg = await replay.next_msg(timeout=60)
            if msg.subject == last:
                relayed.append(msg)
    assert [json.loads(m.data)["data"]["n"] for m in relayed] == list(range(20))

    # Exactly once: the default namespace's stored events are the relayed ones, in store
    # order, none twice (a copy would follow its original).
    stored = [e.id for e in await export_events(stack.nats_url) if e.namespace == "default"]
    everything = await _replay(external.nc)
    ids: list[str] = []
    with contextlib.suppress(NatsTimeout):
        while True:
            msg = await everything.next_msg(timeout=10 if len(ids) < len(stored) else 0.5)
            ids.append((msg.headers or {})["Nats-Msg-Id"])
    assert ids[: len(stored)] == stored
    assert not set(ids[len(stored) :]) & set(stored)  # later events only, no copies

    # A second copy of a relayed event is dropped by the stream (its id is the Nats-Msg-Id).
    copy = await services.jetstream().publish(
        relayed[0].subject, relayed[0].data, headers={"Nats-Msg-Id": ids[-1]}
    )
    assert copy.duplicate


async def _forged_listener(
    services: Client,
) -> tuple[str, "nats.aio.subscription.Subscription"]:
    """A fresh agent-event subject no service writes to, and a services' listener on it."""
    subject = f"parley.evt.agent.forged-{uuid.uuid4().hex[:8]}"
    listener = await services.subscribe(subject)
    await services.flush()
    return subject, listener


async def _hears_nothing(sub: "nats.aio.subscription.Subscription") -> None:
    """Nothing arrives on ``sub`` within half a second."""
    with pytest.raises(NatsTimeout):
        await sub.next_msg(timeout=0.5)


async def _replay(nc: Client) -> "nats.js.JetStreamContext.PushSubscription":
    """The namespace's events from the start: an ordered consumer created on the filtered
    subject ``$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS.<name>.parley.ext.default.evt.>``."""
    return await nc.jetstream().subscribe(
        "parley.ext.default.evt.>",
        stream="PARLEY_EXT_EVENTS",
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        config=ConsumerConfig(name=f"reader-{uuid.uuid4().hex}"),
    )


async def _create_consumer(nc: Client, config: dict) -> dict:
    """The server's answer to a consumer of ``config`` created on the one create subject the
    external user may use (filtered on its namespace's events)."""
    name = f"consumer-{uuid.uuid4().hex[:8]}"
    request = {"stream_name": "PARLEY_EXT_EVENTS", "config": {"name": name, **config}}
    answer = await nc.request(
        f"$JS.API.CONSUMER.CREATE.PARLEY_EXT_EVENTS.{name}.parley.ext.default.evt.>",
        json.dumps(request).encode(),
        timeout=5,
    )
    reply: dict = json.loads(answer.data)
    return reply


async def _until_agent(sub: "nats.aio.subscription.Subscription", agent_id: str) -> list[Msg]:
    """Messages of ``sub`` up to the first about agent ``agent_id``."""
    seen: list[Msg] = []
    async with asyncio.timeout(20):
        while not seen or not seen[-1].subject.endswith(f".evt.agent.{agent_id}"):
            seen.append(await sub.next_msg(timeout=20))
    return seen


async def _next_on(sub: "nats.aio.subscription.Subscription", subject: str) -> Msg:
    """The first message of ``sub`` on ``subject``."""
    async with asyncio.timeout(20):
        while True:
            msg = await sub.next_msg(timeout=20)
            if msg.subject == subject:
                return msg


async def _healthy(stack: Stack, service: str) -> None:
    """Wait until ``service`` answers its health subject."""
    nc = await nats.connect(stack.nats_url)
    try:

        async def answers() -> bool:
            try:
                await nc.request(subjects.health(service), b"", timeout=0.5)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                return False
            return True

        await eventually(answers, within=30)
    finally:
        await nc.close()


async def _eventually_get(client: httpx.AsyncClient, agent_id: str) -> dict:
    """The agent over REST; a NATS publisher gets no read-your-writes wait from the edge."""
    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/api/v1/agents/{agent_id}")
            if response.status_code == 200:
                return response.json()["data"]
            assert response.status_code == 404, response.text
            await asyncio.sleep(0.05)
