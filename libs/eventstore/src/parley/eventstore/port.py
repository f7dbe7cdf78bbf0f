"""The event store port: what every backend provides, and the errors it raises."""

from collections.abc import AsyncIterator
from collections.abc import Sequence
from typing import Protocol

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent

__all__ = [
    "ANY_VERSION",
    "NO_STREAM",
    "AppendResult",
    "ConcurrencyConflict",
    "EventStore",
    "EventStoreError",
    "EventStoreUnavailable",
    "EventTooLarge",
    "InvalidStreamName",
    "Subscription",
]

NO_STREAM = 0
"""Expected version of a stream that must not exist yet."""
ANY_VERSION = -1
"""Expected version that appends whatever the stream's current version is."""


class AppendResult(msgspec.Struct, frozen=True):
    """Where an append landed."""

    version: int
    """The stream's version after the append (the last appended event's version)."""
    position: int
    """Global position of the last appended event."""


class EventStoreError(Exception):
    """Root of every event store error."""


class ConcurrencyConflict(EventStoreError):
    """The stream's version was not the expected one."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {actual}, not the expected {expected}: "
            "read it again and retry"
        )
        self.stream, self.expected, self.actual = stream, expected, actual


class EventTooLarge(EventStoreError):
    """An event is larger than the store accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"event of {size} bytes exceeds the store's limit of {limit} bytes")
        self.size, self.limit = size, limit


class InvalidStreamName(EventStoreError):
    """A stream name the store cannot hold."""


class EventStoreUnavailable(EventStoreError):
    """The backend could not be reached or did not answer in time."""


class Subscription(Protocol):
    """A catch-up-then-live feed of events in position order."""

    def __aiter__(self) -> AsyncIterator[Event]:
        """Yield events from the start position on, then live ones as they are appended."""
        ...

    async def close(self) -> None:
        """Stop the feed and release its server-side resources."""
        ...


class EventStore(Protocol):
    """An append-only store of event streams with a global order."""

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append ``events`` atomically if ``stream`` is at ``expected_version``.

        ``NO_STREAM`` (0) requires a new stream, ``ANY_VERSION`` skips the check. An event id
        already stored in ``stream`` is not stored again: a retried append reports success.
        Raises ConcurrencyConflict, EventTooLarge, InvalidStreamName, EventStoreUnavailable.
        """
        ...

    async def read(self, stream: str, from_version: int = 1) -> list[Event]:
        """Events of ``stream`` from ``from_version`` on, in version order ([] if none)."""
        ...

    async def last_position(self) -> int:
        """Global position of the newest event in the store (0 when empty)."""
        ...

    async def next_position(self, after: int, categories: Sequence[str]) -> int | None:
        """Position of the first event after ``after`` in a stream of ``categories``; None if
        there is none (yet).

        A follower of some categories reads only their events; this tells it that it has seen
        every one of them up to a position it was not sent.
        """
        ...

    def subscribe(
        self, from_position: int = 0, categories: Sequence[str] | None = None
    ) -> Subscription:
        """Events after ``from_position`` (exclusive), catch-up then live, in position order.

        ``categories`` keeps only streams of those categories (``agent`` for ``agent-<id>``);
        None means every stream.
        """
        ...

    def know_tail(self, stream: str, version: int, position: int, event_id: str) -> None:
        """Hint that ``stream``'s last event is ``event_id`` at ``version`` and ``position``
        (another process recorded it and said so), so an append at the stream's end can skip
        looking it up. A wrong hint costs what no hint costs: the append finds out and looks.
        """
        ...

    async def load_checkpoint(self, name: str) -> int:
        """The position subscriber ``name`` last saved (0 if none)."""
        ...

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Save subscriber ``name``'s position."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
