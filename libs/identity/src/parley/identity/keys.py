"""API key secrets: how they are made, recognised and stored (as a digest).

A secret reads ``pk_<key id>_<43 urlsafe characters>``: the prefix makes a leaked key easy
to spot (secret scanners, :mod:`parley.identity.scrub`), and the key id in it names the key
in logs and lists without the rest. Only :func:`digest` of it is ever stored.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass

__all__ = [
    "KEY_PREFIX",
    "SECRET_PATTERN",
    "IssuedSecret",
    "digest",
    "issue_secret",
    "new_key_id",
]

KEY_PREFIX = "pk_"
"""Every API key secret starts with this."""
_RANDOM_BYTES = 32
SECRET_PATTERN = re.compile(r"pk_[A-Za-z0-9-]{1,64}_[A-Za-z0-9_-]{43}")
"""The shape of an API key secret."""


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A fresh secret and what may be stored about it."""

    secret: str
    """The secret itself: handed to the caller once, stored nowhere."""
    digest: str
    """:func:`digest` of the secret."""
    prefix: str
    """``pk_<key id>``: enough to recognise the key, useless to use it."""

    def __repr__(self) -> str:  # never print the secret by accident
        return f"IssuedSecret(prefix={self.prefix!r}, digest={self.digest[:12]!r}…)"


def new_key_id() -> str:
    """A fresh key id: 16 lowercase hex characters (64 random bits)."""
    return secrets.token_hex(8)


def digest(secret: str) -> str:
    """The hex SHA-256 of ``secret``: what is stored, and what a presented key is looked up by.

    A plain, unsalted, fast hash is right here, unlike for passwords: the secret is 256 random
    bits from :mod:`secrets`, so no dictionary or brute force can invert its digest, and
    there is nothing to slow down. Being deterministic, the digest is also the lookup key, so
    checking a key costs one hash and one dict lookup (well under the 0.1 ms budget), where a
    salted KDF would need the key id first and milliseconds per request.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_secret(key_id: str) -> IssuedSecret:
    """A fresh secret for key ``key_id`` (no ``_`` in the id, so the shape stays parseable)."""
    if "_" in key_id:
        raise ValueError(f"a key id may not contain '_': {key_id!r}")
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_RANDOM_BYTES)}"
    return IssuedSecret(secret=secret, digest=digest(secret), prefix=f"{KEY_PREFIX}{key_id}")
