"""Single-use WebSocket tickets, shared by every edge process through a NATS KV bucket.

A browser cannot set headers on a WebSocket handshake, and a key in a URL ends up in logs and
history. So an authenticated ``POST /api/v1/ws-tickets`` mints a ticket (:meth:`mint`), and
the socket presents it once (:meth:`redeem`); any edge process may serve either request.

- Minting is create-only (``kv.create``), so two tickets never share an entry.
- Redeeming reads the entry and deletes it *at the revision read* (an expected-last-sequence
  delete): of two processes redeeming one ticket at once, exactly one delete succeeds; the
  other sees the entry gone or its revision moved on, and refuses.
- The bucket keeps entries for :data:`TICKET_TTL` (its ``max_age``), and the expiry stored in
  the entry is checked again on redeem.
- The bucket's keys are SHA-256 digests of the tickets, so reading the bucket yields no
  ticket that could be redeemed.
"""

import hashlib
import secrets
from datetime import datetime
from datetime import timedelta

import msgspec
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.api import StorageType
from nats.js.errors import APIError
from nats.js.errors import KeyDeletedError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from parley.contracts.envelope import utcnow
from parley.contracts.subjects import TICKETS_BUCKET
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal

__all__ = ["TICKET_PREFIX", "TICKET_TTL", "TicketStore"]

TICKET_TTL = timedelta(seconds=30)
"""How long a ticket may wait to be redeemed."""
TICKET_PREFIX = "pt_"
"""Every ticket starts with this (recognisable, and scrubbed like any secret)."""
_WRONG_LAST_SEQUENCE = (10071, 10164)


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    principal: Principal
    expires_at: datetime


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Entry).decode


class TicketStore:
    """Mint and redeem single-use tickets in the :data:`TICKETS_BUCKET` KV bucket."""

    def __init__(
        self, js: JetStreamContext, bucket: str = TICKETS_BUCKET, *, replicas: int = 1
    ) -> None:
        self.js, self.bucket, self.replicas = js, bucket, replicas
        self._kv: KeyValue | None = None

    async def start(self) -> None:
        """Open (or create) the bucket."""
        self._kv = await self.js.create_key_value(
            KeyValueConfig(
                bucket=self.bucket,
                history=1,
                ttl=TICKET_TTL.total_seconds(),
                storage=StorageType.MEMORY,
                replicas=self.replicas,
            )
        )

    async def mint(self, principal: Principal, now: datetime | None = None) -> str:
        """A fresh ticket that :meth:`redeem` turns into ``principal`` once, within
        :data:`TICKET_TTL`."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        entry = _Entry(principal=principal, expires_at=(now or utcnow()) + TICKET_TTL)
        await self._bucket().create(_key(ticket), _encode(entry))
        return ticket

    async def redeem(self, ticket: str, now: datetime | None = None) -> Principal:
        """The principal ``ticket`` was minted for; the ticket is then spent.

        Raises:
            AuthenticationError: The ticket is malformed, unknown, already used or expired.
        """
        if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
            raise AuthenticationError("malformed ticket", "Ticket")
        kv, key = self._bucket(), _key(ticket)
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):  # never minted, spent (deleted) or aged out
            raise AuthenticationError("unknown, used or expired ticket", "Ticket") from None
        try:
            await kv.delete(key, last=entry.revision)
        except APIError as exc:  # the nats-py delete does not map the wrong-sequence code
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise
            raise AuthenticationError("ticket already used", "Ticket") from None
        found = _decode(entry.value or b"")
        if found.expires_at <= (now or utcnow()):
            raise AuthenticationError("ticket expired", "Ticket")
        return found.principal

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the ticket store is not started")
        return self._kv


def _key(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()
