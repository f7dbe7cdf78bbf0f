"""Identifiers: UUIDv7 (time-ordered) for events, agents and requests, and the id patterns.

Every id and namespace the API accepts is validated by one of the aliases here.
"""

import hashlib
from typing import Annotated

import uuid_utils
from msgspec import Meta

__all__ = ["ID_PATTERN", "NAMESPACE_PATTERN", "Id", "Namespace", "named_stream", "new_id"]

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""An id: up to 64 letters, digits, ``_`` or ``-`` (a UUIDv7 or a client's own)."""
NAMESPACE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A namespace: a DNS label (lowercase letters, digits and ``-``, at most 63)."""

Id = Annotated[str, Meta(pattern=ID_PATTERN, description="An id.")]
Namespace = Annotated[str, Meta(pattern=NAMESPACE_PATTERN, description="Tenant name.")]


def new_id() -> str:
    """Return a new UUIDv7 as its canonical string."""
    return str(uuid_utils.uuid7())


def named_stream(category: str, namespace: str, name: str) -> str:
    """Stream of what is known by ``name`` in ``namespace``: ``<category>-<namespace>-<hash>``.

    The name is hashed (SHA-256, 32 hex digits) so any name makes a valid stream name.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{category}-{namespace}-{digest}"
