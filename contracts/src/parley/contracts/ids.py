"""Identifiers: UUIDv7 (time-ordered) for events, agents and requests, and the id patterns.

Every id and namespace the API accepts is validated by one of the aliases here.
"""

from typing import Annotated

import uuid_utils
from msgspec import Meta

__all__ = [
    "DEFAULT_NAMESPACE",
    "ID_PATTERN",
    "NAMESPACE_PATTERN",
    "Id",
    "Namespace",
    "new_id",
    "scoped",
    "unscoped",
]

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""An id: up to 64 letters, digits, ``_`` or ``-`` (a UUIDv7 or a client's own)."""
NAMESPACE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A namespace: a DNS label (lowercase letters, digits and ``-``, at most 63)."""

DEFAULT_NAMESPACE = "default"
"""The namespace of a request that names none."""

Id = Annotated[str, Meta(pattern=ID_PATTERN, description="An id.")]
Namespace = Annotated[str, Meta(pattern=NAMESPACE_PATTERN, description="Tenant name.")]


def new_id() -> str:
    """Return a new UUIDv7 as its canonical string."""
    return str(uuid_utils.uuid7())


def scoped(namespace: str, ident: str) -> str:
    """``ident`` made unique across namespaces, for a stream name (``task-<scoped>``).

    ``<namespace>_<ident>``; in :data:`DEFAULT_NAMESPACE` the id itself, so the streams stored
    before namespaces scoped them keep their names. A namespace holds no ``_``, so the part
    before the first ``_`` is the namespace; which of the two forms a stream has is told by
    its events' namespace (:func:`unscoped`).
    """
    return ident if namespace == DEFAULT_NAMESPACE else f"{namespace}_{ident}"


def unscoped(namespace: str, key: str) -> str | None:
    """The id :func:`scoped` made ``key`` from in ``namespace``; None if not made there."""
    if namespace == DEFAULT_NAMESPACE:
        return key
    head, sep, ident = key.partition("_")
    return ident if sep and head == namespace and ident else None
