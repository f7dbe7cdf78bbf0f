"""One entry point for every credential the edge accepts: :class:`Authenticator`.

- ``X-API-Key: pk_…`` — an API key (:class:`~parley.identity.keyindex.KeyIndex`);
- ``Authorization: Bearer pk_…`` — the same key, for clients that only send bearer tokens;
- ``Authorization: Bearer <jwt>`` — a token of the configured identity provider
  (:class:`~parley.identity.bearer.BearerVerifier`), when JWT is configured.

WebSocket tickets are redeemed by :class:`~parley.identity.tickets.TicketStore` directly.
A key's use is reported through ``on_key_use`` at most once a minute per key, in the
background, so the request never waits for it.
"""

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable

from parley.identity.bearer import BearerVerifier
from parley.identity.keyindex import KeyIndex
from parley.identity.keys import KEY_PREFIX
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal

__all__ = ["API_KEY_HEADER", "Authenticator"]

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
"""The header that carries an API key."""


class Authenticator:
    """Turns a request's credentials into a :class:`Principal`, or refuses them."""

    def __init__(
        self,
        keys: KeyIndex,
        bearer: BearerVerifier | None = None,
        *,
        on_key_use: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        """
        Args:
            keys: The process's key index (started).
            bearer: The JWT verifier, or None when JWT bearer tokens are not accepted.
            on_key_use: Called with a key id when its use should be recorded (the edge
                sends ``record_api_key_use``); at most once a minute per key.
        """
        self.keys, self.bearer, self.on_key_use = keys, bearer, on_key_use
        self._pending: set[asyncio.Task[object]] = set()

    async def authenticate(
        self, api_key: str | None = None, authorization: str | None = None
    ) -> Principal:
        """The principal of the request's ``X-API-Key`` or ``Authorization`` header value.

        Raises:
            AuthenticationError: No credential, a malformed header, or a credential that
                does not authenticate (with the reason, and the scheme to challenge with).
        """
        if api_key:
            return self._key(api_key.strip())
        if not authorization:
            raise AuthenticationError(
                f"no credentials: send {API_KEY_HEADER}: <key> or Authorization: Bearer <key"
                " or token>"
            )
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationError(
                "the Authorization header must read 'Bearer <token>'", "Bearer"
            )
        if credential.startswith(KEY_PREFIX):
            return self._key(credential)
        if self.bearer is None:
            raise AuthenticationError(
                "bearer tokens are not accepted here (no identity provider is configured);"
                " send an API key",
                "Bearer",
            )
        return await self.bearer.verify(credential)

    def _key(self, secret: str) -> Principal:
        principal = self.keys.authenticate(secret)
        key_id = principal.id.removeprefix("key:")
        if self.on_key_use is not None and self.keys.note_use(key_id):
            task: asyncio.Task[object] = asyncio.ensure_future(self.on_key_use(key_id))
            self._pending.add(task)
            task.add_done_callback(self._done)
        return principal

    def _done(self, task: "asyncio.Task[object]") -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record an API key's use", exc_info=task.exception())

    async def close(self) -> None:
        """Wait for the use reports in flight."""
        await asyncio.gather(*self._pending, return_exceptions=True)
