"""What every ``evolve`` shares: the event types it folds, how a create event starts an
aggregate, and the error of a stream no valid history produces."""

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict
from typing import TypeVar

import msgspec

from parley.contracts.envelope import Event

__all__ = ["Born", "CorruptStreamError", "Folded", "born", "created", "kinds"]

P = TypeVar("P", bound=msgspec.Struct)


def kinds(event_types: Iterable[str], *prefixes: str) -> frozenset[str]:
    """The types of ``event_types`` named ``<prefix>.<what>`` for one of ``prefixes``: an
    aggregate's ``FOLDS``, taken from its context's event-type map."""
    return frozenset(t for t in event_types if t.partition(".")[0] in prefixes)


class CorruptStreamError(Exception):
    """A stream holds events no valid history produces (e.g. an update before the create)."""

    @classmethod
    def again(cls, event: Event) -> "CorruptStreamError":
        """``event`` (a create) comes where its aggregate already exists."""
        return cls(f"{event.stream}: {event.type} at version {event.version}")

    @classmethod
    def before(cls, event: Event, created: str) -> "CorruptStreamError":
        """``event`` comes before the aggregate's ``created`` event."""
        return cls(f"{event.stream}: {event.type} before {created}")


class Born(TypedDict):
    """The fields a create event gives every aggregate it starts."""

    namespace: str
    version: int
    created_at: datetime


class Folded(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of every aggregate a create event starts (what :func:`born` gives it)."""

    namespace: str
    """Tenant the aggregate lives in."""
    version: int
    """Stream version of the last folded event."""
    created_at: datetime
    """Time of its create event (the last one, for an aggregate created again)."""


def born(event: Event) -> Born:
    """The tenant, stream version and creation time of the aggregate ``event`` creates."""
    return Born(namespace=event.namespace, version=event.version, created_at=event.time)


def created(event: Event, payload_type: type[P], *, exists: bool) -> P:
    """The payload of the create ``event``.

    Args:
        event: The aggregate's create event.
        payload_type: Its payload type.
        exists: Whether the aggregate it creates is there already (and alive).

    Raises:
        CorruptStreamError: If ``exists``: no valid history creates a live aggregate twice.
        msgspec.ValidationError: If ``event.data`` does not match ``payload_type``.
    """
    if exists:
        raise CorruptStreamError.again(event)
    return msgspec.convert(event.data, payload_type)
