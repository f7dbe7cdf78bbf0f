"""An API key, folded from its stream ``apikey_stream(key_id)``, and its decider.

The registry decides with :func:`decide`; every edge's key index (``parley.identity``)
folds with :func:`evolve`, so what a key may do is computed once.

The secret is made outside the decider (it is random, and a decider is pure): a create or
rotate reaches :func:`decide` as :class:`Issue` / :class:`Reissue`, which carry only the
secret's digest and display prefix, and so do the events.
"""

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.decision import check_expected
from parley.aggregates.fold import CorruptStreamError
from parley.aggregates.fold import born
from parley.aggregates.fold import created
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.identity import EVENT_TYPES
from parley.contracts.identity import ApiKeyCreated
from parley.contracts.identity import ApiKeyMetadata
from parley.contracts.identity import ApiKeyRevoked
from parley.contracts.identity import ApiKeyRotated
from parley.contracts.identity import ApiKeyUsed
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import RecordApiKeyUse
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import Role
from parley.contracts.identity import RotateApiKey
from parley.contracts.identity import apikey_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "USE_INTERVAL",
    "ApiKey",
    "Issue",
    "KeyCommand",
    "Reissue",
    "decide",
    "evolve",
    "usable",
]

CATEGORY = apikey_stream.category
"""The stream category this aggregate folds (``apikey-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "apikey")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

USE_INTERVAL = timedelta(minutes=1)
"""A key's use is recorded at most once per this interval (``apikey.used``)."""


class ApiKey(ApiKeyMetadata, frozen=True, kw_only=True):
    """An API key as folded from its stream: its metadata and its secret's digest."""

    digest: str
    """Hex SHA-256 of the current secret."""
    revoked_by: str | None = None

    @property
    def revoked(self) -> bool:
        """Revoked for good."""
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class Issue:
    """A create, with the key id and secret the registry made for it."""

    command: CreateApiKey
    key_id: str
    digest: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Reissue:
    """A rotate, with the new secret's digest and prefix."""

    command: RotateApiKey
    digest: str
    prefix: str


KeyCommand = Issue | Reissue | RevokeApiKey | RecordApiKeyUse


def usable(key: ApiKey, now: datetime) -> str | None:
    """Why ``key`` cannot authenticate at ``now`` (``revoked``/``expired``), or None."""
    if key.revoked:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return None


def evolve(state: ApiKey | None, event: Event) -> ApiKey | None:
    """Fold one recorded event into an API key; unknown types only advance ``version``.

    Raises:
        CorruptStreamError: On a second create, or any other event before the create.
        msgspec.ValidationError: If ``event.data`` does not match its payload type.
    """
    if event.type == "apikey.created":
        create = created(event, ApiKeyCreated, exists=state is not None)
        return ApiKey(**msgspec.structs.asdict(create), **born(event))
    if state is None:
        raise CorruptStreamError.before(event, "apikey.created")
    replace = msgspec.structs.replace
    if event.type == "apikey.rotated":
        rotated = msgspec.convert(event.data, ApiKeyRotated)
        return replace(
            state,
            digest=rotated.digest,
            prefix=rotated.prefix,
            expires_at=rotated.expires_at,
            rotated_at=event.time,
            version=event.version,
        )
    if event.type == "apikey.revoked":
        revoked = msgspec.convert(event.data, ApiKeyRevoked)
        return replace(
            state, revoked_at=event.time, revoked_by=revoked.revoked_by, version=event.version
        )
    if event.type == "apikey.used":
        return replace(state, last_used_at=event.time, version=event.version)
    return replace(state, version=event.version)


def decide(state: ApiKey | None, command: KeyCommand, ctx: Context) -> Decision[Never]:
    """Decide the events an API key command causes.

    Args:
        state: The key folded from its stream, or None if the stream is empty.
        command: A create (:class:`Issue`), rotate (:class:`Reissue`), revoke or use.
        ctx: The decision's time: expiries must lie after it, uses are throttled by it.

    Raises:
        ParleyError: ``NOT_FOUND`` (no such key in the command's namespace),
            ``INVALID_STATE_TRANSITION`` (rotating or revoking a revoked key),
            ``CONCURRENCY_CONFLICT`` (a create over an existing key, or a stale
            ``expected_version``) or ``VALIDATION_ERROR`` (an expiry in the past).
    """
    if isinstance(command, Issue):
        return _create(state, command, ctx)
    if isinstance(command, RecordApiKeyUse):
        if state is None or state.namespace != command.namespace or usable(state, ctx.now):
            return Decision()  # nothing to note; a use is never worth a refusal
        if state.last_used_at is not None and ctx.now - state.last_used_at < USE_INTERVAL:
            return Decision()
        return Decision([("apikey.used", ApiKeyUsed(key_id=state.key_id))])
    wire = command.command if isinstance(command, Reissue) else command
    key = _live(state, wire)
    if isinstance(command, Reissue):
        expires_at = command.command.expires_at or key.expires_at
        if command.command.expires_at is not None:
            _check_expiry(command.command.expires_at, ctx.now)
        rotated = ApiKeyRotated(
            key_id=key.key_id,
            digest=command.digest,
            prefix=command.prefix,
            expires_at=expires_at,
            rotated_by=command.command.actor,
        )
        return Decision([("apikey.rotated", rotated)])
    revoked = ApiKeyRevoked(key_id=key.key_id, reason=command.reason, revoked_by=command.actor)
    return Decision([("apikey.revoked", revoked)])


def _create(state: ApiKey | None, issue: Issue, ctx: Context) -> Decision[Never]:
    command = issue.command
    if state is not None:
        raise ParleyError(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"API key {issue.key_id} already exists",
            {"key_id": issue.key_id},
        )
    if command.expires_at is not None:
        _check_expiry(command.expires_at, ctx.now)
    created = ApiKeyCreated(
        key_id=issue.key_id,
        name=command.name,
        digest=issue.digest,
        prefix=issue.prefix,
        roles=sorted(set(command.roles), key=list(Role).index),
        namespaces=sorted(set(command.namespaces or [command.namespace])),
        expires_at=command.expires_at,
        created_by=command.actor,
    )
    return Decision([("apikey.created", created)])


def _live(state: ApiKey | None, command: RotateApiKey | RevokeApiKey) -> ApiKey:
    """The key the command acts on: it exists in the command's namespace, not revoked."""
    if state is None or state.namespace != command.namespace:
        raise ParleyError(
            ErrorCode.NOT_FOUND,
            f"no API key {command.key_id} in namespace {command.namespace}",
            {"key_id": command.key_id},
        )
    if state.revoked:
        raise ParleyError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"API key {command.key_id} is revoked; create a new key instead",
            {"key_id": command.key_id, "revoked_at": state.revoked_at},
        )
    check_expected(f"API key {command.key_id}", command.expected_version, state.version)
    return state


def _check_expiry(expires_at: datetime, now: datetime) -> None:
    if expires_at.tzinfo is None or expires_at <= now:
        message = "must be a timezone-aware time in the future"
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"expires_at: {message}",
            {"errors": [{"field": "expires_at", "code": "VALIDATION_ERROR", "message": message}]},
        )
