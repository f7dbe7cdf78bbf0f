"""The key index: every API key, folded from the ``apikey-*`` streams, looked up by digest.

Each edge process keeps one, following the event store (catch-up, then live), so a key
created, rotated or revoked by any process is known to every other one as soon as its event
is delivered (milliseconds on JetStream; the issue asks for under a second). Checking a
presented key costs one SHA-256 and one dict lookup.
"""

from datetime import datetime

import msgspec

from parley.aggregates import apikey
from parley.aggregates.apikey import USE_INTERVAL
from parley.aggregates.apikey import ApiKey
from parley.aggregates.apikey import usable
from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.contracts.identity import ApiKeyView
from parley.contracts.identity import apikey_stream
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower
from parley.identity.keys import KEY_PREFIX
from parley.identity.keys import digest
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal

__all__ = ["BOOTSTRAP_KEY_ID", "KeyIndex", "principal_of", "view"]

BOOTSTRAP_KEY_ID = "bootstrap"
"""Key id of the admin key the dev stack makes on first start."""
_MAX_SECRET = 256
_STREAM_PREFIX = apikey_stream("")


def principal_of(key: ApiKey) -> Principal:
    """The principal a key authenticates as."""
    return Principal(
        id=f"key:{key.key_id}",
        kind="bootstrap" if key.key_id == BOOTSTRAP_KEY_ID else "key",
        roles=frozenset(key.roles),
        namespaces=frozenset(key.namespaces),
        name=key.name,
    )


def view(key: ApiKey) -> ApiKeyView:
    """A key as the API shows it (no digest)."""
    return msgspec.convert(key, ApiKeyView, from_attributes=True)


class KeyIndex(Follower):
    """Every API key of the store, by id and by the digest of its current secret.

    It reads every stream (and folds only ``apikey-*`` ones) so that its applied position
    follows the store's: ``ready`` and ``wait_for(position)`` then hold for any position,
    which a category-filtered feed cannot promise (it never sees the other streams'
    positions). In the edge, make it a member of the views' ``FollowerGroup`` so every event
    is still read and decoded once.
    """

    categories = None
    name = "key-index"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._keys: dict[str, ApiKey] = {}
        self._by_digest: dict[str, str] = {}
        self._principals: dict[str, Principal] = {}
        self._noted: dict[str, datetime] = {}

    def fold(self, event: Event) -> None:
        """Fold one ``apikey.*`` event with the aggregate's own :func:`~apikey.evolve`."""
        if not event.stream.startswith(_STREAM_PREFIX):
            return
        before = self._keys.get(event.stream.removeprefix(_STREAM_PREFIX))
        after = apikey.evolve(before, event)
        if after is None:
            return
        if before is not None and before.digest != after.digest:
            self._by_digest.pop(before.digest, None)  # a rotated secret stops at once
        self._keys[after.key_id] = after
        self._by_digest[after.digest] = after.key_id
        self._principals[after.key_id] = principal_of(after)

    def authenticate(self, secret: str, now: datetime | None = None) -> Principal:
        """The principal of the key whose secret is ``secret``.

        Raises:
            AuthenticationError: The secret is malformed, unknown, revoked or expired.
        """
        if not secret.startswith(KEY_PREFIX) or len(secret) > _MAX_SECRET:
            raise AuthenticationError("malformed API key")
        key_id = self._by_digest.get(digest(secret))
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None or key_id is None:
            raise AuthenticationError("unknown API key")
        why = usable(key, now or utcnow())
        if why is not None:
            raise AuthenticationError(f"API key {why}")
        return self._principals[key_id]

    def recheck(self, principal: Principal, now: datetime | None = None) -> None:
        """Refuse a principal authenticated earlier by a key that has since been revoked or
        has expired (a redeemed ticket, an open WebSocket); principals of other kinds pass.
        A rotation does not end what the old secret opened; a revocation does.

        Raises:
            AuthenticationError: The key no longer authenticates.
        """
        if principal.kind not in ("key", "bootstrap"):
            return
        key = self._keys.get(principal.id.removeprefix("key:"))
        if key is None:
            raise AuthenticationError("unknown API key")
        why = usable(key, now or utcnow())
        if why is not None:
            raise AuthenticationError(f"API key {why}")

    def get(self, key_id: str) -> ApiKey | None:
        """The key ``key_id`` as folded so far, if any."""
        return self._keys.get(key_id)

    def keys(self, principal: Principal | None = None) -> list[ApiKey]:
        """Every key (oldest first), or only those whose namespace ``principal`` sees."""
        found = sorted(self._keys.values(), key=lambda key: (key.created_at, key.key_id))
        if principal is None:
            return found
        return [key for key in found if principal.sees(key.namespace)]

    def __len__(self) -> int:
        return len(self._keys)

    def note_use(self, key_id: str, now: datetime | None = None) -> bool:
        """Whether to record a use of ``key_id`` now (``record_api_key_use``): at most once a
        :data:`~parley.aggregates.apikey.USE_INTERVAL` per key and process, and not when the
        folded ``last_used_at`` is that recent already."""
        now = now or utcnow()
        key = self._keys.get(key_id)
        last = max(
            [t for t in (self._noted.get(key_id), key.last_used_at if key else None) if t],
            default=None,
        )
        if key is None or (last is not None and now - last < USE_INTERVAL):
            return False
        self._noted[key_id] = now
        return True
