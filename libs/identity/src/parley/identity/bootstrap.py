"""The bootstrap admin key: the first key of a fresh stack, so ``just up`` works out of the box.

On first start the launcher calls :func:`bootstrap_admin_key`. It creates one admin key for
every namespace (key id :data:`~parley.identity.keyindex.BOOTSTRAP_KEY_ID`, stream
``apikey-bootstrap``), writes its secret to ``<state dir>/admin.key`` readable only by its
owner (mode 0600), and returns it for the launcher to print once. Later starts find the
stream and do nothing, even when that key has since been revoked: the bootstrap happens
once per store, like a Kubernetes bootstrap token.

Crash safety: the secret is written to ``admin.key.<pid>.pending`` (0600) *before* the key's event
is appended, and renamed to ``admin.key`` after. A start that finds the stream and a pending
file whose digest matches the key finishes the rename, so a crash between the two never
loses the only admin secret. Two launchers racing on one store both try a create-only
append; one wins, the other returns None.
"""

import os
from pathlib import Path

from parley.aggregates import apikey
from parley.aggregates.apikey import ApiKey
from parley.aggregates.apikey import Issue
from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ParleyError
from parley.contracts.identity import ALL_NAMESPACES
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import Role
from parley.contracts.identity import apikey_stream
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store
from parley.eventstore.repository import Repository
from parley.identity.keyindex import BOOTSTRAP_KEY_ID
from parley.identity.keys import digest
from parley.identity.keys import issue_secret

__all__ = ["ADMIN_KEY_FILE", "SOURCE", "bootstrap_admin_key", "bootstrap_admin_key_at"]

ADMIN_KEY_FILE = "admin.key"
"""Name of the file, under the state folder, that holds the bootstrap admin secret."""
SOURCE = "/parley/bootstrap"
"""The ``source`` of the bootstrap key's event."""
_STREAM = apikey_stream(BOOTSTRAP_KEY_ID)


async def bootstrap_admin_key(
    store: EventStore, state_dir: Path, *, namespace: str = "default"
) -> str | None:
    """Create the bootstrap admin key if this store never had one.

    Args:
        store: The event store the edge authenticates against.
        state_dir: The stack's state folder; the secret goes to ``admin.key`` in it.
        namespace: The namespace the key belongs to (it may act in every namespace).

    Returns:
        The new secret, to print once; None when the key already existed.
    """
    state_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, at start-up)
    final = state_dir / ADMIN_KEY_FILE
    keys = Repository[ApiKey](store, apikey.evolve, cache_size=0)
    existing = (await keys.load(_STREAM)).state
    if existing is not None:
        return _finish_pending(existing, state_dir, final)
    pending = state_dir / f"{ADMIN_KEY_FILE}.{os.getpid()}.pending"
    issued = issue_secret(BOOTSTRAP_KEY_ID)
    _write_private(pending, issued.secret)
    command = CreateApiKey(
        namespace=namespace,
        name="bootstrap admin",
        roles=[Role.ADMIN],
        namespaces=[ALL_NAMESPACES],
        actor=SOURCE,
    )
    issue = Issue(
        command=command, key_id=BOOTSTRAP_KEY_ID, digest=issued.digest, prefix=issued.prefix
    )

    def decide(state: ApiKey | None) -> list[NewEvent]:
        ctx = Context()
        decided = apikey.decide(state, issue, ctx).events
        return to_new_events(
            decided, subject=BOOTSTRAP_KEY_ID, namespace=namespace, source=SOURCE, now=ctx.now
        )

    try:
        await keys.execute(_STREAM, decide)
    except ParleyError:  # another launcher created it first
        pending.unlink(missing_ok=True)
        return None
    os.replace(pending, final)
    return issued.secret


async def bootstrap_admin_key_at(
    nats_url: str, state_dir: Path, *, backend: str | None = None, kurrentdb_url: str | None = None
) -> str | None:
    """:func:`bootstrap_admin_key` on the store at ``nats_url`` (or KurrentDB), opened and
    closed here: for a launcher that holds no store (``asyncio.run(...)`` from the dev stack).
    """
    store = await open_store(backend=backend, nats_url=nats_url, kurrentdb_url=kurrentdb_url)
    try:
        return await bootstrap_admin_key(store, state_dir)
    finally:
        await store.close()


def _finish_pending(key: ApiKey, state_dir: Path, final: Path) -> str | None:
    """A pending secret of this very key (a start that died before the rename): keep it;
    other pending files (launchers that lost a race, or died before appending) go."""
    found = None
    for pending in sorted(state_dir.glob(f"{ADMIN_KEY_FILE}.*.pending")):
        secret = pending.read_text().strip()
        if found is None and not key.revoked and digest(secret) == key.digest:
            os.replace(pending, final)
            found = secret
        else:
            pending.unlink()
    return found


def _write_private(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, readable and writable by its owner only, from the start."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.chmod(path, 0o600)  # whatever the umask
