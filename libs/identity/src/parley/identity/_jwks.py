"""Where the keys that verify JWTs come from: an HMAC secret file, a JWKS file or a JWKS URL."""

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from parley.identity.principal import AuthenticationError
from parley.kit.settings import SettingsError

__all__ = ["KeySet", "Keys", "Secret", "read_jwks", "read_secret"]

_MIN_SECRET = 32
"""Bytes an HS256 secret needs at least (its hash's size)."""


class Keys:
    """A key source: the key that verifies a token with a given header."""

    async def key_for(self, header: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class Secret(Keys):
    """An HMAC secret (HS256): the one key for every token."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    async def key_for(self, header: Mapping[str, Any]) -> Any:
        return self._secret


class KeySet(Keys):
    """A JWKS read once (a file), or kept fresh from a URL.

    From a URL, the set is fetched again when it is older than ``refresh_s``, or when a
    token names a ``kid`` it lacks (the provider rotated its keys) but at most once per
    ``cooldown_s``, so tokens with made-up ``kid``s cannot make the edge hammer the provider.
    One fetch at a time; requests that wait for it use its result.
    """

    def __init__(
        self,
        keys: jwt.PyJWKSet,
        client: jwt.PyJWKClient | None = None,
        refresh_s: float = 300.0,
        cooldown_s: float = 30.0,
    ) -> None:
        self._client, self.refresh_s, self.cooldown_s = client, refresh_s, cooldown_s
        self._use(keys)
        self._lock = asyncio.Lock()

    @classmethod
    async def fetch(cls, url: str, refresh_s: float, cooldown_s: float) -> "KeySet":
        client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=refresh_s, timeout=10)
        try:
            keys = await asyncio.to_thread(client.get_jwk_set)
        except jwt.PyJWKClientError as exc:
            raise SettingsError(f"PARLEY_JWT_JWKS_URL: could not fetch {url}: {exc}") from exc
        return cls(keys, client, refresh_s, cooldown_s)

    async def key_for(self, header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        key = self._find(kid)
        age = time.monotonic() - self._fetched
        if self._client is not None and (key is None or age > self.refresh_s):
            key = await self._refresh(kid, known=key)
        if key is None:
            raise AuthenticationError("unknown signing key", "Bearer")
        return key

    async def _refresh(self, kid: object, known: jwt.PyJWK | None) -> jwt.PyJWK | None:
        assert self._client is not None
        async with self._lock:
            age = time.monotonic() - self._fetched
            due = self.cooldown_s if known is None else self.refresh_s
            if age < due:  # fetched meanwhile, or too recently to fetch again
                return self._find(kid)
            try:
                self._use(await asyncio.to_thread(self._client.get_jwk_set, True))
            except jwt.PyJWKClientError:
                if known is None:
                    reason = "the signing keys could not be fetched"
                    raise AuthenticationError(reason, "Bearer") from None
                return known  # keep serving the keys we have
            return self._find(kid)

    def _use(self, keys: jwt.PyJWKSet) -> None:
        signing = [k for k in keys.keys if k.public_key_use in (None, "sig")]
        self._by_kid = {k.key_id: k for k in signing if k.key_id}
        self._only = signing[0] if len(signing) == 1 else None
        self._fetched = time.monotonic()

    def _find(self, kid: object) -> jwt.PyJWK | None:
        if kid is None:
            return self._only
        return self._by_kid.get(kid) if isinstance(kid, str) else None


def read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SettingsError(f"PARLEY_JWT_SECRET_FILE: cannot read {path}: {exc}") from exc
    if len(secret) < _MIN_SECRET:
        raise SettingsError(
            f"PARLEY_JWT_SECRET_FILE: the secret in {path} is {len(secret)} bytes; HS256 needs"
            f" at least {_MIN_SECRET}"
        )
    return secret


def read_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise SettingsError(f"PARLEY_JWT_JWKS_FILE: cannot read a JWKS from {path}: {exc}") from exc
