"""API keys through the registry's command table, seen by a key index following the store.

Every command goes through ``parley.registry.app.ROUTES`` as the service serves it; a
:class:`~parley.identity.keyindex.KeyIndex` follows the same in-memory store, as every edge
process follows JetStream.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from _registry import NS
from _registry import send

from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.identity import Role
from parley.contracts.identity import apikey_stream
from parley.eventstore.follower import FollowerGroup
from parley.eventstore.memory import MemoryEventStore
from parley.identity.keyindex import KeyIndex
from parley.identity.keyindex import view
from parley.identity.keys import SECRET_PATTERN
from parley.identity.keys import digest
from parley.identity.principal import AuthenticationError
from parley.registry.app import ROUTES
from parley.registry.handlers import Registry
from parley.registry.handlers import reply_for_error


@pytest.fixture
async def index(store: MemoryEventStore) -> AsyncIterator[KeyIndex]:
    index = KeyIndex(store)
    await index.start()
    yield index
    await index.stop()


async def create(registry: Registry, **body: Any) -> Any:
    reply = await send(
        registry,
        "create_api_key",
        **{"name": "ci", "roles": ["operator"], "actor": "key:a", **body},
    )
    assert reply.ok, reply.error
    return reply


async def seen(index: KeyIndex, reply: Any) -> None:
    assert await index.wait_for(reply.position, within=1.0)


async def test_a_created_key_s_secret_is_in_the_reply_only_and_authenticates(
    registry: Registry, store: MemoryEventStore, index: KeyIndex
) -> None:
    reply = await create(registry, namespaces=["acme", "beta"])
    assert SECRET_PATTERN.fullmatch(reply.secret) and reply.secret.startswith(reply.prefix)
    assert reply.key_id in reply.prefix and reply.version == 1
    [event] = await store.read(apikey_stream(reply.key_id))
    recorded = msgspec.json.encode(event).decode()
    assert reply.secret not in recorded and reply.secret[len(reply.prefix) :] not in recorded
    assert event.data["digest"] == digest(reply.secret) and event.namespace == NS
    assert event.data["created_by"] == "key:a" and event.source == "/parley/registry"
    await seen(index, reply)
    principal = index.authenticate(reply.secret)
    assert principal.id == f"key:{reply.key_id}" and principal.kind == "key"
    assert principal.roles == {Role.OPERATOR} and principal.namespaces == {"acme", "beta"}


async def test_two_keys_never_share_a_secret(registry: Registry) -> None:
    first, second = await create(registry), await create(registry)
    assert first.key_id != second.key_id and first.secret != second.secret


async def test_a_revoked_key_is_refused_by_the_index_within_a_second(
    registry: Registry, index: KeyIndex
) -> None:
    reply = await create(registry)
    await seen(index, reply)
    principal = index.authenticate(reply.secret)
    index.recheck(principal)
    revoked = await send(registry, "revoke_api_key", key_id=reply.key_id, reason="leaked")
    assert revoked.ok and revoked.version == 2 and revoked.secret is None
    await seen(index, revoked)
    with pytest.raises(AuthenticationError, match="API key revoked"):
        index.authenticate(reply.secret)
    with pytest.raises(AuthenticationError, match="API key revoked"):
        index.recheck(principal)  # e.g. a WebSocket opened before the revocation
    again = await send(registry, "revoke_api_key", key_id=reply.key_id)
    assert again.error.code == ErrorCode.INVALID_STATE_TRANSITION


async def test_rotating_gives_a_new_secret_and_the_old_one_stops_at_once(
    registry: Registry, index: KeyIndex
) -> None:
    reply = await create(registry)
    rotated = await send(registry, "rotate_api_key", key_id=reply.key_id, expected_version=1)
    assert rotated.ok and rotated.version == 2 and rotated.secret != reply.secret
    assert rotated.prefix == reply.prefix
    await seen(index, rotated)
    assert index.authenticate(rotated.secret).id == f"key:{reply.key_id}"
    with pytest.raises(AuthenticationError, match="unknown API key"):
        index.authenticate(reply.secret)
    stale = await send(registry, "rotate_api_key", key_id=reply.key_id, expected_version=1)
    assert stale.error.code == ErrorCode.CONCURRENCY_CONFLICT


async def test_an_expired_key_is_refused(registry: Registry, index: KeyIndex) -> None:
    expiry = utcnow() + timedelta(hours=1)
    reply = await create(registry, expires_at=expiry.isoformat())
    await seen(index, reply)
    assert index.authenticate(reply.secret, now=expiry - timedelta(seconds=1))
    with pytest.raises(AuthenticationError, match="API key expired"):
        index.authenticate(reply.secret, now=expiry)


async def test_malformed_and_unknown_secrets_are_refused(index: KeyIndex) -> None:
    with pytest.raises(AuthenticationError, match="malformed"):
        index.authenticate("Bearer x")
    with pytest.raises(AuthenticationError, match="unknown"):
        index.authenticate("pk_0000000000000000_" + "A" * 43)


async def test_another_namespace_s_key_is_not_found(registry: Registry) -> None:
    reply = await create(registry)
    command_type, handler = ROUTES["revoke_api_key"]
    with pytest.raises(Exception) as info:
        await handler(
            registry, msgspec.convert({"namespace": "other", "key_id": reply.key_id}, command_type)
        )
    error = reply_for_error(info.value).error
    assert error is not None and error.code == ErrorCode.NOT_FOUND


async def test_a_bad_create_is_refused_before_anything_is_stored(
    registry: Registry, store: MemoryEventStore
) -> None:
    past = (utcnow() - timedelta(days=1)).isoformat()
    reply = await send(registry, "create_api_key", name="x", roles=["viewer"], expires_at=past)
    assert reply.error.code == ErrorCode.VALIDATION_ERROR
    reply = await send(registry, "create_api_key", name="x", roles=["superuser"])
    assert reply.error.code == ErrorCode.VALIDATION_ERROR
    assert await store.last_position() == 0


async def test_uses_are_recorded_at_most_once_a_minute(
    registry: Registry, store: MemoryEventStore, index: KeyIndex
) -> None:
    reply = await create(registry)
    first = await send(registry, "record_api_key_use", key_id=reply.key_id)
    assert first.ok and first.version == 2
    second = await send(registry, "record_api_key_use", key_id=reply.key_id)
    assert second.ok and second.version == 2  # nothing appended
    await seen(index, first)
    key = index.get(reply.key_id)
    assert key is not None and key.last_used_at is not None
    assert not index.note_use(reply.key_id)  # the fold says: used this minute
    assert index.note_use(reply.key_id, now=key.last_used_at + timedelta(minutes=1))
    assert not index.note_use(reply.key_id, now=key.last_used_at + timedelta(minutes=1))


async def test_the_index_lists_keys_by_namespace_and_views_carry_no_digest(
    registry: Registry, index: KeyIndex
) -> None:
    mine = await create(registry)
    theirs = await send(registry, "create_api_key", namespace="other", name="b", roles=["viewer"])
    await seen(index, theirs)
    assert [key.key_id for key in index.keys()] == [mine.key_id, theirs.key_id]
    admin = index.authenticate(mine.secret)
    assert [key.key_id for key in index.keys(admin)] == [mine.key_id]
    shown = msgspec.to_builtins(view(index.keys(admin)[0]))
    assert "digest" not in shown and shown["prefix"] == mine.prefix


async def test_a_second_index_started_later_catches_up(
    registry: Registry, store: MemoryEventStore
) -> None:
    reply = await create(registry)
    late = KeyIndex(store)
    await late.start()
    try:
        assert await late.wait_for(reply.position, within=1.0) and late.ready
        assert late.authenticate(reply.secret).id == f"key:{reply.key_id}"
    finally:
        await late.stop()


async def test_the_index_is_ready_at_the_store_s_last_position_whatever_stream_holds_it(
    registry: Registry, store: MemoryEventStore, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await create(registry)
    await send(registry, "create_agent", spec={"name": "after-the-key"})  # the last event
    late = KeyIndex(store)
    await late.start()
    try:
        assert await late.wait_for(await store.last_position(), within=1.0) and late.ready
        assert late.authenticate(reply.secret) and len(late) == 1
    finally:
        await late.stop()
    grouped = KeyIndex(store)
    group = FollowerGroup(store, [grouped])  # as the edge's views share one feed
    await group.start()
    try:
        assert await grouped.wait_for(await store.last_position(), within=1.0)
        assert grouped.authenticate(reply.secret)
    finally:
        await group.stop()
    assert "skipped unreadable event" not in caplog.text
