"""Identifiers: UUIDv7 (time-ordered) for events, agents and requests, and the id patterns.

Every id and namespace the API accepts is validated by one of the aliases here.
"""

import hashlib
from dataclasses import dataclass
from typing import Annotated

import uuid_utils
from msgspec import Meta

__all__ = [
    "DEFAULT_NAMESPACE",
    "ID_PATTERN",
    "NAMESPACE_PATTERN",
    "Id",
    "IdStream",
    "NameStream",
    "Namespace",
    "ScopedStream",
    "named_stream",
    "new_id",
    "scoped",
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


def named_stream(category: str, namespace: str, name: str) -> str:
    """Stream of what is known by ``name`` in ``namespace``: ``<category>-<namespace>-<hash>``.

    The name is hashed (SHA-256, 32 hex digits) so any name makes a valid stream name.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{category}-{namespace}-{digest}"


def scoped(namespace: str, ident: str) -> str:
    """``ident`` made unique across namespaces, for a stream name (``task-<scoped>``).

    ``<namespace>_<ident>``; in :data:`DEFAULT_NAMESPACE` the id itself, so the streams stored
    before namespaces scoped them keep their names. A namespace holds no ``_``, so the part
    before the first ``_`` is the namespace. Every event also names its namespace and its
    subject (the id), which is how a fold keys what it reads: that also covers a stream
    stored before, whose events are of another namespace than ``default``.

    A ``default`` id of the form ``<namespace>_<id>`` (ids may hold ``_``) would share its
    stream with that namespace's ``<id>``; the append at version 0 of whichever comes second
    refuses it (409), so the two never mix.
    """
    return ident if namespace == DEFAULT_NAMESPACE else f"{namespace}_{ident}"


@dataclass(frozen=True)
class IdStream:
    """Streams of one category keyed by a globally unique id: ``<category>-<id>``."""

    category: str

    def __call__(self, ident: str) -> str:
        """The stream of ``ident``."""
        return f"{self.category}-{ident}"


@dataclass(frozen=True)
class ScopedStream:
    """Streams of one category keyed by an id unique in its namespace: ``<category>-<scoped>``
    (:func:`scoped`: the id itself in ``default``, else ``<namespace>_<id>``)."""

    category: str

    def __call__(self, namespace: str, ident: str) -> str:
        """The stream of ``ident`` in ``namespace``."""
        return f"{self.category}-{scoped(namespace, ident)}"


@dataclass(frozen=True)
class NameStream:
    """Streams of one category keyed by a name in a namespace (:func:`named_stream`)."""

    category: str

    def __call__(self, namespace: str, name: str) -> str:
        """The stream of ``name`` in ``namespace``."""
        return named_stream(self.category, namespace, name)
