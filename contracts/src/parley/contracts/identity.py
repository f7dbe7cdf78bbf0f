"""Identity's bounded context: roles, API key commands, events, replies and views.

An API key lives on stream ``apikey_stream(key_id)`` and is managed by the registry's
commands ``parley.cmd.registry.{create,rotate,revoke}_api_key`` (and ``record_api_key_use``
for its last-used time). The secret is made by the registry and shown once, in the reply
to the create or rotate that made it; events and views carry only its SHA-256 digest
(:attr:`ApiKeyCreated.digest`) and a short display prefix, never the secret.

A key event's ``namespace`` is the namespace the key was created in (its owner); the
namespaces the key may act in are :attr:`ApiKeyCreated.namespaces`. ``apikey.*`` events are
for admins only: the edge keeps them out of other principals' event feeds.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from parley.contracts.commands import Command
from parley.contracts.commands import Reply
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import Id
from parley.contracts.ids import IdStream

__all__ = [
    "ALL_NAMESPACES",
    "EVENT_TYPES",
    "ApiKeyCommand",
    "ApiKeyCreated",
    "ApiKeyMetadata",
    "ApiKeyReply",
    "ApiKeyRevoked",
    "ApiKeyRotated",
    "ApiKeyUsed",
    "ApiKeyView",
    "CreateApiKey",
    "KeyName",
    "NamespaceGrant",
    "RecordApiKeyUse",
    "RevokeApiKey",
    "Role",
    "RotateApiKey",
    "apikey_stream",
]

ALL_NAMESPACES = "*"
"""A namespace grant that covers every namespace."""


class Role(StrEnum):
    """What a principal may do in its namespaces (see ``parley.identity.roles``)."""

    ADMIN = "admin"
    """Everything, API keys included."""
    OPERATOR = "operator"
    """Create, change, delete, run, message and deploy."""
    VIEWER = "viewer"
    """Read and subscribe."""


KeyName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A label for people: what or who the key is for.",
    ),
]
NamespaceGrant = Annotated[
    str,
    Meta(
        pattern=r"^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$",
        description="A namespace, or `*` for every namespace.",
    ),
]
Principal = Annotated[str, Meta(max_length=256, description="Id of the acting principal.")]


apikey_stream = IdStream("apikey")
"""The stream of API key ``key_id``."""


# --- commands (request bodies on parley.cmd.registry.<verb>) ---------------------------


class _Command(Command, kw_only=True):
    actor: Principal | None = None
    """Id of the principal that sent the command (set by the edge, recorded in the event)."""


class CreateApiKey(_Command, kw_only=True):
    """Create an API key; the reply carries its secret, shown this once."""

    name: KeyName
    """What or who the key is for."""
    roles: Annotated[list[Role], Meta(min_length=1, max_length=3)]
    """The roles the key grants."""
    namespaces: Annotated[list[NamespaceGrant], Meta(max_length=256)] = []
    """The namespaces the key may act in (`*`: all); empty means the command's namespace."""
    expires_at: datetime | None = None
    """When the key stops working (timezone-aware, in the future); None: never."""


class RotateApiKey(_Command, kw_only=True):
    """Replace a key's secret: the old one stops working at once; the reply has the new."""

    key_id: Id
    """The key."""
    expires_at: datetime | None = None
    """A new expiry; None keeps the current one."""
    expected_version: int | None = None
    """Refuse with `CONCURRENCY_CONFLICT` unless the key is at this version."""


class RevokeApiKey(_Command, kw_only=True):
    """Revoke a key for good; every edge refuses it within a second."""

    key_id: Id
    """The key."""
    reason: Annotated[str, Meta(max_length=1024)] | None = None
    """Why; recorded in the event."""
    expected_version: int | None = None
    """Refuse with `CONCURRENCY_CONFLICT` unless the key is at this version."""


class RecordApiKeyUse(_Command, kw_only=True):
    """Note that a key was used now; recorded at most once a minute per key."""

    key_id: Id
    """The key."""


ApiKeyCommand = CreateApiKey | RotateApiKey | RevokeApiKey | RecordApiKeyUse


class ApiKeyReply(Reply, kw_only=True):
    """Reply to an API key command; ``secret`` only after a create or a rotate."""

    key_id: str | None = None
    secret: str | None = None
    """The key's secret: shown only in this reply, stored nowhere. Keep it safe."""
    prefix: str | None = None
    """The secret's first characters, to recognise the key in lists."""


# --- events (data of apikey.* events) ----------------------------------------------------


class _ApiKeyEvent(msgspec.Struct, kw_only=True):
    """The field every ``apikey.*`` event starts with: which key."""

    key_id: str


class ApiKeyCreated(_ApiKeyEvent, kw_only=True):
    """An API key was created."""

    name: str
    digest: str
    """Hex SHA-256 of the secret (never the secret)."""
    prefix: str
    """The secret's display prefix."""
    roles: list[Role]
    namespaces: list[str]
    """Namespaces the key may act in; `*` is all."""
    expires_at: datetime | None = None
    created_by: str | None = None
    """Id of the principal that created it."""


class ApiKeyRotated(_ApiKeyEvent, kw_only=True):
    """An API key's secret was replaced; the previous one no longer authenticates."""

    digest: str
    """Hex SHA-256 of the new secret."""
    prefix: str
    expires_at: datetime | None = None
    """The expiry from now on."""
    rotated_by: str | None = None


class ApiKeyRevoked(_ApiKeyEvent, kw_only=True):
    """An API key was revoked for good."""

    reason: str | None = None
    revoked_by: str | None = None


class ApiKeyUsed(_ApiKeyEvent, kw_only=True):
    """An API key authenticated a request (recorded at most once a minute)."""


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "apikey.created": ApiKeyCreated,
    "apikey.rotated": ApiKeyRotated,
    "apikey.revoked": ApiKeyRevoked,
    "apikey.used": ApiKeyUsed,
}
"""Event type name → payload type, for every API key event."""


class ApiKeyMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """What the API may show of an API key: all of the view, and the part of the folded key
    (``parley.aggregates.apikey.ApiKey``) besides its digest and who revoked it."""

    key_id: Annotated[str, Meta(pattern=ID_PATTERN)]
    name: str
    prefix: str
    """The secret's first characters."""
    namespace: str
    """The namespace the key belongs to."""
    roles: list[Role]
    namespaces: list[str]
    """Namespaces the key may act in; ``*`` is all."""
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    version: int
    """Stream version of the last folded event."""


class ApiKeyView(ApiKeyMetadata, frozen=True, kw_only=True):
    """An API key as the API lists it: its metadata, never its secret or digest."""
