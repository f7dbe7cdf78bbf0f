"""``/api/v1/events``: the event stream over Server-Sent Events, and custom events.

Every SSE message is one event: ``id`` its global position, ``event`` its type, ``data`` its
envelope. A client that reconnects with ``Last-Event-ID`` gets exactly the events after that
position, so a stream survives disconnects without gaps or repeats.
"""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from msgspec import Meta

from parley.contracts.envelope import Event, EventType, NewEvent
from parley.contracts.errors import ErrorCode
from parley.edge.body import decode_body
from parley.edge.errors import ApiError
from parley.edge.request_ids import request_id
from parley.edge.streams import (
    EventFilter,
    FilterError,
    Pump,
    encode_event,
    parse_position,
    split_values,
)
from parley.eventstore.port import (
    ANY_VERSION,
    EventStore,
    EventStoreError,
    EventStoreUnavailable,
    EventTooLarge,
)

__all__ = ["RESERVED_PREFIXES", "event_routes"]

KEEPALIVE_S = 15.0
"""Seconds of silence after which the stream sends a `: keep-alive` comment."""
_QUEUE = 256

RESERVED_PREFIXES: tuple[str, ...] = (
    "agent.",
    "agent_name.",
    "task.",
    "cluster.",
    "session.",
    "message.",
    "execution.",
    "deployment.",
    "tool.",
    "budget.",
)
"""Event type prefixes only the platform may emit."""

_IDEMPOTENCY = uuid.UUID("5b0f6c1e-3d0a-4f59-9c47-6a2d1f0e8b11")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_END = object()


class CustomEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A custom event a client records (`POST /api/v1/events`)."""

    type: EventType
    """Dotted lowercase type outside the platform's prefixes, e.g. `custom.order_placed`."""
    subject: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    """What the event is about; also names its stream (`custom-<subject>`)."""
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """The payload."""
    stream: Annotated[str, Meta(min_length=1, max_length=160)] | None = None
    """Stream to append to: `custom-<id>` or a bare `<id>` (default: from `subject`)."""


class PublishedEvent(msgspec.Struct, frozen=True):
    """The recorded event, with its stream, version and position."""

    data: Event


@get("/api/v1/events", summary="Stream events (Server-Sent Events)")
async def stream_events(request: Request[Any, Any, Any]) -> ServerSentEvent:
    """Events as Server-Sent Events, catch-up then live.

    Query: ``type`` (globs, comma-separated or repeated), ``agent_id`` (the event's subject,
    ``data.agent_id``, ``data.receiver``, or a message's sender or receivers),
    ``performative`` (a message's FIPA act), ``stream`` (each repeatable), ``namespace``,
    ``from_position`` (exclusive; default: live only). The ``Last-Event-ID`` header overrides
    ``from_position``.
    """
    query = request.query_params
    try:
        event_filter = EventFilter.parse(
            types=split_values(query.getall("type", [])),
            agent_ids=split_values(query.getall("agent_id", [])),
            streams=split_values(query.getall("stream", [])),
            namespace=_single(query.getall("namespace", []), "namespace"),
            performatives=split_values(query.getall("performative", [])),
        )
        start = parse_position(request.headers.get("last-event-id"), "Last-Event-ID")
        if start is None:
            start = parse_position(
                _single(query.getall("from_position", []), "from_position"), "from_position"
            )
    except FilterError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    store: EventStore = request.app.state.store
    if start is None:
        start = await _last_position(store)
    feed = _SseFeed(store, start, event_filter)
    return ServerSentEvent(feed, background=BackgroundTask(feed.close))


@post("/api/v1/events", status_code=201, summary="Record a custom event")
async def publish_event(request: Request[Any, Any, Any]) -> PublishedEvent:
    """Append a custom event to ``custom-<subject>``; ``Idempotency-Key`` appends once."""
    body = await decode_body(request, CustomEvent)
    if body.type.startswith(RESERVED_PREFIXES):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"event type {body.type!r} uses a reserved platform prefix; "
            "use your own prefix, e.g. `custom.`",
            {"reserved_prefixes": list(RESERVED_PREFIXES)},
        )
    stream = _stream_of(body)
    subject = body.subject or stream.partition("-")[2]
    event_id = _idempotent_id(request)
    new = NewEvent(
        type=body.type,
        subject=subject,
        data=body.data,
        source="/parley/edge",
        correlationid=request_id(request.scope),
        traceparent=_traceparent(request),
        **({"id": event_id} if event_id else {}),
    )
    store: EventStore = request.app.state.store
    try:
        result = await store.append(stream, [new], ANY_VERSION)
        if event_id is not None:
            # A retry may have been stored earlier: answer with what was recorded then.
            recorded = await store.read(stream, result.version)
            if recorded and recorded[0].id == new.id:
                return PublishedEvent(recorded[0])
    except EventTooLarge as exc:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, str(exc)) from None
    except EventStoreUnavailable as exc:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from None
    except EventStoreError as exc:
        raise ApiError(ErrorCode.INTERNAL_ERROR, "the event store refused the event") from exc
    return PublishedEvent(
        Event.record(new, stream=stream, version=result.version, position=result.position)
    )


event_routes = [stream_events, publish_event]


class _SseFeed:
    """One client's stream: a store subscription pumped through a bounded queue."""

    def __init__(self, store: EventStore, start: int, event_filter: EventFilter) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE)
        self._error: Exception | None = None
        self._pump = Pump(store, start, event_filter, self._queue.put, self._failed)

    def _failed(self, exc: Exception) -> None:
        self._error = exc
        if not self._queue.full():
            self._queue.put_nowait(_END)

    async def close(self) -> None:
        """Stop the subscription (on disconnect, on error, or when the response ends)."""
        await self._pump.close()

    def __aiter__(self) -> AsyncIterator[ServerSentEventMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[ServerSentEventMessage]:
        queue = self._queue
        self._pump.start()
        try:
            while True:
                if self._error is not None and queue.empty():
                    yield _error_message(self._error)
                    return
                try:
                    async with asyncio.timeout(KEEPALIVE_S):  # unlike wait_for, never
                        item = await queue.get()  # swallows a disconnect's cancellation
                except TimeoutError:
                    yield ServerSentEventMessage(data=None, comment="keep-alive")
                    continue
                if item is _END:
                    continue
                yield ServerSentEventMessage(
                    data=encode_event(item).decode(), event=item.type, id=item.position
                )
        finally:
            await self._pump.close()


def _error_message(exc: Exception) -> ServerSentEventMessage:
    body = {
        "error": {
            "code": ErrorCode.SERVICE_UNAVAILABLE,
            "message": "the event stream was interrupted; reconnect with Last-Event-ID",
            "details": None,
        }
    }
    return ServerSentEventMessage(data=msgspec.json.encode(body).decode(), event="error")


def _single(values: list[str], name: str) -> str | None:
    if len(values) > 1:
        raise FilterError(f"give {name} once")
    return values[0] if values else None


async def _last_position(store: EventStore) -> int:
    try:
        return await store.last_position()
    except EventStoreUnavailable as exc:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from None


def _stream_of(body: CustomEvent) -> str:
    """``custom-<id>`` from the body's stream or subject, rewritten to a valid stream id."""
    name = body.stream.removeprefix("custom-") if body.stream else (body.subject or "events")
    safe = _UNSAFE.sub("_", name)[:140]
    if safe != name or not safe:
        safe = f"{safe}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return f"custom-{safe}"


def _idempotent_id(request: Request[Any, Any, Any]) -> str | None:
    """The event id an ``Idempotency-Key`` stands for: the same key, the same id."""
    key = request.headers.get("idempotency-key")
    if not key:
        return None
    if len(key) > 256:
        raise ApiError(ErrorCode.INVALID_REQUEST, "Idempotency-Key is longer than 256 characters")
    return str(uuid.uuid5(_IDEMPOTENCY, key))


def _traceparent(request: Request[Any, Any, Any]) -> str | None:
    value = request.headers.get("traceparent")
    return value if value and _TRACEPARENT.match(value) else None
