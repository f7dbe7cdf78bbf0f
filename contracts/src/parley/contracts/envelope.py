"""The event envelope: CloudEvents 1.0 attributes plus Parley's extensions.

A :class:`NewEvent` is what a decider emits; the event store records it as an :class:`Event`,
adding ``stream``, ``version`` (dense per stream, from 1) and ``position`` (global, monotonic).
"""

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from parley.contracts.ids import new_id

__all__ = ["Event", "EventType", "NewEvent", "StreamName", "utcnow"]

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

    @classmethod
    def record(cls, new: NewEvent, *, stream: str, version: int, position: int = 0) -> "Event":
        """Record ``new`` at ``version`` of ``stream``."""
        return cls(
            id=new.id,
            source=new.source,
            type=new.type,
            subject=new.subject,
            time=new.time,
            data=new.data,
            stream=stream,
            version=version,
            position=position,
            namespace=new.namespace,
            correlationid=new.correlationid,
            causationid=new.causationid,
            traceparent=new.traceparent,
        )
