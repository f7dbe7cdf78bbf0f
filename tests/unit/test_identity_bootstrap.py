"""The bootstrap admin key: made once per store, written for its owner's eyes only."""

import asyncio
import stat
from pathlib import Path

import msgspec

from parley.contracts.identity import ALL_NAMESPACES
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import Role
from parley.contracts.identity import apikey_stream
from parley.devstack.nats import NatsServer
from parley.eventstore.factory import open_store
from parley.eventstore.memory import MemoryEventStore
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key
from parley.identity.bootstrap import bootstrap_admin_key_at
from parley.identity.keyindex import BOOTSTRAP_KEY_ID
from parley.identity.keyindex import KeyIndex
from parley.identity.principal import Action
from parley.registry.app import ROUTES
from parley.registry.handlers import Registry


def pending(folder: Path) -> list[Path]:
    return list(folder.glob("*.pending"))


async def index_of(store: MemoryEventStore) -> KeyIndex:
    index = KeyIndex(store)
    await index.start()
    assert await index.wait_for(await store.last_position(), within=1.0)
    return index


async def test_the_first_start_makes_an_admin_key_for_every_namespace_in_a_0600_file(
    tmp_path: Path,
) -> None:
    store = MemoryEventStore()
    secret = await bootstrap_admin_key(store, tmp_path / "state")
    assert secret is not None
    path = tmp_path / "state" / ADMIN_KEY_FILE
    assert path.read_text().strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not pending(path.parent)
    index = await index_of(store)
    try:
        principal = index.authenticate(secret)
        assert principal.kind == "bootstrap" and principal.roles == {Role.ADMIN}
        assert principal.namespaces == {ALL_NAMESPACES}
        assert principal.can(Action.MANAGE_KEYS, "any-namespace")
    finally:
        await index.stop()
    [event] = await store.read(apikey_stream(BOOTSTRAP_KEY_ID))
    assert secret not in msgspec.json.encode(event).decode()


async def test_later_starts_do_nothing_and_keep_the_file(tmp_path: Path) -> None:
    store = MemoryEventStore()
    secret = await bootstrap_admin_key(store, tmp_path)
    assert await bootstrap_admin_key(store, tmp_path) is None
    assert (tmp_path / ADMIN_KEY_FILE).read_text().strip() == secret
    assert len(await store.read(apikey_stream(BOOTSTRAP_KEY_ID))) == 1


async def test_a_revoked_bootstrap_key_is_not_made_again(tmp_path: Path) -> None:
    store = MemoryEventStore()
    assert await bootstrap_admin_key(store, tmp_path)
    _, revoke = ROUTES["revoke_api_key"]
    assert (await revoke(Registry(store), RevokeApiKey(key_id=BOOTSTRAP_KEY_ID))).ok
    assert await bootstrap_admin_key(store, tmp_path / "elsewhere") is None


async def test_launchers_racing_on_one_store_make_one_key(tmp_path: Path) -> None:
    store = MemoryEventStore()
    made = await asyncio.gather(*(bootstrap_admin_key(store, tmp_path / f"s{i}") for i in range(4)))
    assert len([secret for secret in made if secret]) == 1
    assert len(await store.read(apikey_stream(BOOTSTRAP_KEY_ID))) == 1


async def test_a_start_that_died_before_renaming_the_secret_file_is_finished_next_time(
    tmp_path: Path,
) -> None:
    store = MemoryEventStore()
    secret = await bootstrap_admin_key(store, tmp_path)
    final = tmp_path / ADMIN_KEY_FILE
    final.rename(tmp_path / f"{ADMIN_KEY_FILE}.4242.pending")  # as a crash would leave it
    (tmp_path / f"{ADMIN_KEY_FILE}.99.pending").write_text("pk_bootstrap_" + "x" * 43)
    assert await bootstrap_admin_key(store, tmp_path) == secret
    assert final.read_text().strip() == secret
    assert not pending(tmp_path)


async def test_a_launcher_bootstraps_a_fresh_jetstream_store_by_its_url(tmp_path: Path) -> None:
    server = await asyncio.to_thread(NatsServer(tmp_path / "nats").start)  # its own, fresh
    try:
        secret = await bootstrap_admin_key_at(server.url, tmp_path / "state")
        assert secret is not None
        assert await bootstrap_admin_key_at(server.url, tmp_path / "state") is None
        store = await open_store(backend="jetstream", nats_url=server.url)
        try:
            [event] = await store.read(apikey_stream(BOOTSTRAP_KEY_ID))
            assert event.type == "apikey.created" and secret not in str(event.data)
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(server.stop)
