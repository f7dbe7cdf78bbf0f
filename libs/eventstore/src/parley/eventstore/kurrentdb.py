"""The KurrentDB (EventStoreDB) event store, via ``kurrentdbclient``'s asyncio client.

KurrentDB's stream positions are 0-based; Parley's versions are 1-based and dense, so version
``v`` is stream position ``v - 1``. An event's position is its commit position in ``$all``.
The stored data is the Event's JSON (type = event type), so a read gives back the same Event.
"""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from collections.abc import Sequence
from typing import Any

import kurrentdbclient.exceptions as kerr
import msgspec
from kurrentdbclient import AsyncKurrentDBClient
from kurrentdbclient import NewEvent as KNewEvent
from kurrentdbclient import RecordedEvent
from kurrentdbclient import StreamState

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore._codec import check_append
from parley.eventstore._codec import check_stream
from parley.eventstore._codec import decode_event
from parley.eventstore._codec import encode_within
from parley.eventstore._codec import safe_key
from parley.eventstore.port import ANY_VERSION
from parley.eventstore.port import NO_STREAM
from parley.eventstore.port import AppendResult
from parley.eventstore.port import ConcurrencyConflict
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import EventStoreUnavailable
from parley.eventstore.port import EventTooLarge
from parley.eventstore.port import Subscription

__all__ = ["KurrentDBEventStore"]

_CHECKPOINTS = "checkpoint"
_CHECKPOINT_TYPE = "checkpoint.saved"
# System streams and checkpoint streams are not Parley events.
_NOT_EVENTS = (r"\$.*", rf"{_CHECKPOINTS}-.*")
_UNAVAILABLE = (
    kerr.ServiceUnavailableError,
    kerr.DeadlineExceededError,
    kerr.DiscoveryFailedError,
    kerr.GrpcError,
    kerr.NodeIsNotLeaderError,
)
_ID_NAMESPACE = uuid.UUID("6f1c0b8e-5a43-4c1e-9d55-6d2b0c1a7e11")


def _event_uuid(event_id: str) -> uuid.UUID:
    """KurrentDB ids are UUIDs; any other id (an Idempotency-Key) maps to a stable UUIDv5."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return uuid.uuid5(_ID_NAMESPACE, event_id)


def _recorded(rec: RecordedEvent) -> Event:
    return msgspec.structs.replace(
        decode_event(rec.data),
        version=rec.stream_position + 1,
        position=rec.commit_position or 0,
    )


class KurrentDBEventStore:
    """Event store on KurrentDB: one KurrentDB stream per Parley stream."""

    def __init__(self, client: AsyncKurrentDBClient, *, max_event_bytes: int = 1_048_576) -> None:
        self._client = client
        self._max = max_event_bytes
        self._feeds: set[_KurrentFeed] = set()

    @classmethod
    async def open(cls, url: str, *, max_event_bytes: int = 1_048_576) -> "KurrentDBEventStore":
        """Connect to KurrentDB at ``url`` (``kurrentdb://host:2113?tls=false``)."""
        client = AsyncKurrentDBClient(uri=url)
        try:
            await client.connect()
        except (*_UNAVAILABLE, OSError) as exc:
            raise EventStoreUnavailable(
                f"cannot reach KurrentDB at {url}: {exc!r}; check PARLEY_KURRENTDB_URL "
                "or use PARLEY_EVENTSTORE=jetstream"
            ) from exc
        return cls(client, max_event_bytes=max_event_bytes)

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append ``events`` atomically if ``stream`` is at ``expected_version``."""
        check_append(stream, events)
        records = []
        for event in events:
            body = encode_within(Event.record(event, stream=stream, version=0), self._max)
            records.append(KNewEvent(type=event.type, data=body, id=_event_uuid(event.id)))
        if expected_version == ANY_VERSION:
            current: int | StreamState = StreamState.ANY
        elif expected_version == NO_STREAM:
            current = StreamState.NO_STREAM
        else:
            current = expected_version - 1
        last_id = _event_uuid(events[-1].id)
        try:
            try:
                await self._client.append_to_stream(stream, events=records, current_version=current)
            except kerr.WrongCurrentVersionError as exc:
                last = await self._last(stream)
                if last is not None and last.id == last_id:
                    return AppendResult(last.stream_position + 1, last.commit_position or 0)
                actual = exc.actual_version
                raise ConcurrencyConflict(
                    stream, expected_version, actual + 1 if isinstance(actual, int) else 0
                ) from exc
            # Report where the last event is recorded (also right for a de-duplicated retry).
            if isinstance(current, StreamState):
                found = await self._find(stream, last_id)
            else:
                found = await self._at(stream, current + len(records), last_id)
        except (kerr.MaximumAppendSizeExceededError, kerr.RecordMaxSizeExceededError) as exc:
            raise EventTooLarge(sum(len(r.data) for r in records), self._max) from exc
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"KurrentDB did not complete the append: {exc!r}") from exc
        if found is None:
            raise EventStoreError(f"appended to {stream!r} but could not read the event back")
        return AppendResult(found.stream_position + 1, found.commit_position or 0)

    async def read(self, stream: str, from_version: int = 1) -> list[Event]:
        """Events of ``stream`` from ``from_version`` on, in version order ([] if none)."""
        check_stream(stream)
        try:
            recs = await self._client.get_stream(stream, stream_position=max(from_version, 1) - 1)
        except kerr.NotFoundError:
            return []
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not read {stream!r}: {exc!r}") from exc
        return [_recorded(rec) for rec in recs]

    async def last_position(self) -> int:
        """Global position of the newest Parley event (0 when empty)."""
        try:
            return await self._client.get_commit_position(
                filter_exclude=_NOT_EVENTS, filter_by_stream_name=True
            )
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not read the last position: {exc!r}") from exc

    async def next_position(self, after: int, categories: Sequence[str]) -> int | None:
        """Position of the first event after ``after`` in a stream of ``categories``."""
        try:
            records = await self._client.read_all(
                commit_position=after or None,
                filter_include=[f"{c}-" for c in categories],
                filter_by_stream_name=True,
                filter_by_prefix=True,
                limit=2,  # the start position is inclusive: the next one may be the second
            )
            async for rec in records:
                if (rec.commit_position or 0) > after and not rec.stream_name.startswith("$"):
                    return rec.commit_position
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not read the next position: {exc!r}") from exc
        return None

    def subscribe(
        self, from_position: int = 0, categories: Sequence[str] | None = None
    ) -> Subscription:
        """Events after ``from_position``, catch-up then live, in position order."""
        feed = _KurrentFeed(self, from_position, categories)
        self._feeds.add(feed)
        return feed

    def know_tail(self, stream: str, version: int, position: int, event_id: str) -> None:
        """Nothing to do: KurrentDB checks an append's expected version itself."""

    async def load_checkpoint(self, name: str) -> int:
        """The position subscriber ``name`` last saved (0 if none)."""
        last = await self._last(f"{_CHECKPOINTS}-{safe_key(name)}")
        return int(json.loads(last.data)["position"]) if last is not None else 0

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Save subscriber ``name``'s position as an event of ``checkpoint-<name>``."""
        record = KNewEvent(
            type=_CHECKPOINT_TYPE, data=json.dumps({"position": int(position)}).encode()
        )
        try:
            await self._client.append_to_stream(
                f"{_CHECKPOINTS}-{safe_key(name)}", events=[record], current_version=StreamState.ANY
            )
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not save checkpoint {name!r}: {exc!r}") from exc

    async def close(self) -> None:
        """Stop open subscriptions and close the client."""
        for feed in list(self._feeds):
            await feed.close()
        with contextlib.suppress(kerr.ProgrammingError):
            await self._client.close()

    async def _last(self, stream: str) -> RecordedEvent | None:
        try:
            recs = await self._client.get_stream(stream, backwards=True, limit=1)
        except kerr.NotFoundError:
            return None
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not read {stream!r}: {exc!r}") from exc
        return recs[0] if recs else None

    async def _at(self, stream: str, stream_position: int, event_id: uuid.UUID) -> Any:
        recs = await self._client.get_stream(stream, stream_position=stream_position, limit=1)
        if recs and recs[0].id == event_id:
            return recs[0]
        return await self._find(stream, event_id)

    async def _find(self, stream: str, event_id: uuid.UUID) -> RecordedEvent | None:
        """The newest record of ``event_id`` in ``stream``, scanning back from its end."""
        async with await self._client.read_stream(stream, backwards=True) as recs:
            async for rec in recs:
                if rec.id == event_id:
                    return rec
        return None


class _KurrentFeed:
    """A catch-up subscription to ``$all`` filtered by stream-name prefix."""

    def __init__(
        self,
        store: KurrentDBEventStore,
        from_position: int,
        categories: Sequence[str] | None,
    ) -> None:
        self._store = store
        self._from = from_position
        self._categories = list(categories) if categories is not None else None
        self._sub: Any = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        if self._categories is not None:
            filters: dict[str, Any] = {
                "filter_include": [f"{c}-" for c in self._categories],
                "filter_by_stream_name": True,
                "filter_by_prefix": True,
            }
        else:
            filters = {"filter_exclude": _NOT_EVENTS, "filter_by_stream_name": True}
        try:
            self._sub = await self._store._client.subscribe_to_all(
                commit_position=self._from or None, **filters
            )
        except _UNAVAILABLE as exc:
            raise EventStoreUnavailable(f"could not subscribe: {exc!r}") from exc
        if self._closed:
            await self.close()
            return
        try:
            async for rec in self._sub:
                if self._closed:
                    return
                # The start position is exclusive; drop it whatever the server's reading is.
                if (rec.commit_position or 0) <= self._from or rec.stream_name.startswith("$"):
                    continue
                try:
                    event = _recorded(rec)
                except msgspec.DecodeError:
                    continue  # not a Parley event
                yield event
        except _UNAVAILABLE as exc:
            if not self._closed:
                raise EventStoreUnavailable(f"subscription lost: {exc!r}") from exc

    async def close(self) -> None:
        """Stop the subscription."""
        self._closed = True
        self._store._feeds.discard(self)
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.stop(timeout=5)
