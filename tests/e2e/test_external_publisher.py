"""Other systems can publish: a plain nats-py client, knowing only the documented JSON.

It connects as the ``external`` NATS user, which may send the documented commands of its
namespace (``parley.ext.default.cmd.<service>.<verb>``) and read its own replies, and nothing
else: the server itself refuses the rest (NATS is no side door), and the services act in the
subject's namespace whatever the body says (a namespace is a wall).
"""

import asyncio
import contextlib
import gc
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from tests_support import stream_events

from parley.contracts import subjects
from parley.devstack.nats import EXTERNAL_NAMESPACE, EXTERNAL_USER
from parley.devstack.stack import Stack


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
    stack: Stack, external: External
) -> None:
    assert external.nc is not None
    subject = f"parley.evt.agent.forged-{uuid.uuid4().hex[:8]}"
    services = await nats.connect(stack.nats_url)
    try:
        seen = await services.subscribe(subject)
        await services.flush()
        await external.nc.publish(subject, b'{"type": "agent.created"}')
        await external.nc.flush()
        assert "publish" in await external.refused(subject)
        with pytest.raises(NatsTimeout):  # the server dropped it: nobody received it
            await seen.next_msg(timeout=0.5)
    finally:
        await services.close()


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


async def _eventually_get(client: httpx.AsyncClient, agent_id: str) -> dict:
    """The agent over REST; a NATS publisher gets no read-your-writes wait from the edge."""
    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/api/v1/agents/{agent_id}")
            if response.status_code == 200:
                return response.json()["data"]
            assert response.status_code == 404, response.text
            await asyncio.sleep(0.05)
