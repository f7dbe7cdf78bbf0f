"""API keys over NATS: the real registry makes them, a key index on JetStream follows them.

The key index stands for an edge process: it learns of a key's creation, rotation and
revocation from the event store alone, and a revocation takes effect within a second.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from tests_support import stream_events

from parley.contracts import subjects
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store
from parley.identity.keyindex import KeyIndex
from parley.identity.principal import AuthenticationError


@pytest.fixture
async def index(stack: Stack) -> AsyncIterator[KeyIndex]:
    nc = await nats.connect(stack.nats_url)
    store = await open_store(backend="jetstream", nats_url=stack.nats_url, nc=nc)
    index = KeyIndex(store)
    await index.start()
    yield index
    await index.stop()
    await store.close()
    await nc.close()


async def command(stack: Stack, verb: str, **body: Any) -> dict[str, Any]:
    nc = await nats.connect(stack.nats_url)
    try:
        message = await nc.request(
            subjects.cmd("registry", verb), json.dumps(body).encode(), timeout=10
        )
    finally:
        await nc.close()
    reply: dict[str, Any] = json.loads(message.data)
    assert reply["ok"] is True, reply
    return reply


async def test_a_key_made_over_nats_authenticates_until_revoked_within_a_second(
    stack: Stack, index: KeyIndex
) -> None:
    created = await command(
        stack, "create_api_key", namespace="keys-e2e", name="ci", roles=["operator"]
    )
    secret = created["secret"]
    assert secret.startswith(created["prefix"] + "_")
    assert await index.wait_for(created["position"], within=5)
    assert index.authenticate(secret).namespaces == {"keys-e2e"}

    rotated = await command(stack, "rotate_api_key", namespace="keys-e2e", key_id=created["key_id"])
    assert await index.wait_for(rotated["position"], within=5)
    with pytest.raises(AuthenticationError, match="unknown API key"):
        index.authenticate(secret)
    assert index.authenticate(rotated["secret"])

    await command(stack, "revoke_api_key", namespace="keys-e2e", key_id=created["key_id"])
    revoked_at = time.monotonic()
    async with asyncio.timeout(1):
        while True:
            try:
                index.authenticate(rotated["secret"])
            except AuthenticationError as refused:
                assert refused.reason == "API key revoked"
                break
            await asyncio.sleep(0.01)
    assert time.monotonic() - revoked_at < 1

    events = await stream_events(stack, f"apikey-{created['key_id']}")
    assert [e.type for e in events] == ["apikey.created", "apikey.rotated", "apikey.revoked"]
    stored = json.dumps([e.data for e in events])
    assert secret not in stored and rotated["secret"] not in stored
