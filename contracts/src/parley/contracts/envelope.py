"""The event envelope: CloudEvents 1.0 attributes plus Parley's extensions.

A :class:`NewEvent` is what a decider emits; the event store records it as an :class:`Event`,
adding ``stream``, ``version`` (dense per stream, from 1) and ``position`` (global, monotonic).

Every event names the principal that caused it in the ``actor`` extension attribute, so the
event log is the audit log. The actor travels like the trace context: the edge sends each
command with the :data:`ACTOR_HEADER` NATS header, the command routes of ``parley.kit`` hold it
in :data:`current_actor` while the handler runs (and in the tasks it starts), and a
:class:`NewEvent` made meanwhile takes it as its ``actor`` unless given one.
"""

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC
from datetime import datetime
from typing import Annotated
from typing import Any

import msgspec
from msgspec import Meta

from parley.contracts.ids import new_id

__all__ = [
    "ACTOR_HEADER",
    "Event",
    "EventType",
    "NewEvent",
    "StreamName",
    "acting_as",
    "current_actor",
    "valid_actor",
    "utcnow",
]

EventType = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$",
        max_length=128,
        description="Dotted, lowercase, past tense: `agent.created`.",
    ),
]
StreamName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_]{0,31}-[A-Za-z0-9_-]{1,160}$",
        description="An aggregate stream `<category>-<id>`, e.g. `agent-0193…`.",
    ),
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


ACTOR_HEADER = "Parley-Actor"
"""The NATS header naming the principal a command (and all it causes) acts for."""

_ACTOR = re.compile(r"[^\x00-\x1f\x7f]{1,256}")

current_actor: ContextVar[str | None] = ContextVar("parley_actor", default=None)
"""The principal the running work acts for (None: nobody named, e.g. the system itself)."""


def valid_actor(value: str | None) -> str | None:
    """``value`` if it is a well-formed principal id (1-256 printable characters), else None."""
    return value if value is not None and _ACTOR.fullmatch(value) else None


@contextlib.contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Make ``actor`` the :data:`current_actor` for the ``with`` block (and tasks it starts)."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended; the store assigns stream, version and position."""

    type: EventType
    """Event type, e.g. `agent.state_changed`."""
    subject: str
    """The aggregate id the event is about."""
    data: dict[str, Any]
    """The event payload."""
    namespace: str = "default"
    """Tenant the aggregate lives in."""
    source: str = "/parley"
    """The producer, `/parley/<service>`."""
    id: str = msgspec.field(default_factory=new_id)
    """UUIDv7; also the de-duplication key of the append."""
    time: datetime = msgspec.field(default_factory=utcnow)
    """When the event happened."""
    correlationid: str | None = None
    """Id of the request that started the causal chain."""
    causationid: str | None = None
    """Id of the message or event that caused this one."""
    traceparent: str | None = None
    """W3C trace context of the request that caused this event."""
    actor: str | None = msgspec.field(default_factory=current_actor.get)
    """Id of the principal that caused this event (1-256 printable characters, e.g.
    `key:0193…`); defaults to :data:`current_actor`."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded event, as stored, read, and delivered to subscribers."""

    id: str
    """UUIDv7 of the event (CloudEvents `id`)."""
    source: str
    """The producer, `/parley/<service>`."""
    type: str
    """Dotted, lowercase, past-tense type."""
    subject: str
    """The aggregate id the event is about."""
    time: datetime
    """When the event happened."""
    data: dict[str, Any]
    """The event payload."""
    stream: str
    """The aggregate stream, e.g. `agent-<id>`."""
    version: int
    """Dense per-stream version, from 1."""
    position: int = 0
    """Global, monotonic position in the store (0 until recorded)."""
    namespace: str = "default"
    """Tenant the aggregate lives in."""
    specversion: str = "1.0"
    """CloudEvents spec version."""
    datacontenttype: str = "application/json"
    """Content type of `data`."""
    correlationid: str | None = None
    """Id of the request that started the causal chain."""
    causationid: str | None = None
    """Id of the message or event that caused this one."""
    traceparent: str | None = None
    """W3C trace context of the request that caused this event."""
    actor: str | None = None
    """Id of the principal that caused this event (CloudEvents extension); None for events
    of the system itself and for events recorded before principals were named."""

    @classmethod
    def record(cls, new: NewEvent, *, stream: str, version: int, position: int = 0) -> "Event":
        """Record ``new`` (every one of its fields) at ``version`` of ``stream``."""
        return cls(**msgspec.structs.asdict(new), stream=stream, version=version, position=position)
