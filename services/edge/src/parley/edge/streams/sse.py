"""``GET /api/v1/events``: the event stream over Server-Sent Events.

Every SSE message is one event: ``id`` its global position, ``event`` its type, ``data`` its
envelope. A client that reconnects with ``Last-Event-ID`` gets exactly the events after that
position, so a stream survives disconnects without gaps or repeats.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request
from litestar import get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Store
from parley.edge.http.auth import ACTION
from parley.edge.http.auth import EVERY_NAMESPACE
from parley.edge.http.auth import principal
from parley.edge.http.errors import ApiError
from parley.edge.http.eventstream import EventStream
from parley.edge.http.query import QUERY
from parley.edge.streams.filters import EventFilter
from parley.edge.streams.filters import FilterError
from parley.edge.streams.filters import encode_event
from parley.edge.streams.filters import parse_position
from parley.edge.streams.filters import split_values
from parley.edge.streams.hub import Hub
from parley.edge.streams.pump import Pump
from parley.eventstore.port import EventStore
from parley.eventstore.port import EventStoreUnavailable
from parley.identity.principal import Action

__all__ = ["event_routes"]

KEEPALIVE_S = 15.0
"""Seconds of silence after which the stream sends a `: keep-alive` comment."""
_QUEUE = 256
_END = object()


@get(
    "/api/v1/events",
    summary="Stream events (Server-Sent Events)",
    opt={
        ACTION: Action.SUBSCRIBE,
        EVERY_NAMESPACE: True,
        QUERY: ("type", "agent_id", "performative", "stream", "actor", "from_position"),
    },
)
async def stream_events(
    request: Request[Any, Any, Any], store: Store, hub: NamedDependency[Hub]
) -> ServerSentEvent:
    """Events as Server-Sent Events, catch-up then live.

    Query: ``type`` (globs, comma-separated or repeated), ``agent_id`` (the event's subject,
    ``data.agent_id``, ``data.receiver``, or a message's sender or receivers),
    ``performative`` (a message's FIPA act), ``stream``, ``actor`` (the acting principal's
    id: the audit log) (each repeatable), ``namespace``,
    ``from_position`` (exclusive; default: live only). The ``Last-Event-ID`` header overrides
    ``from_position``. Only events of the caller's namespaces are sent, whatever the filter;
    a namespace named by ``X-Parley-Namespace`` (when the query names none) narrows to it.
    """
    query = request.query_params
    event_filter = EventFilter.parse(  # a FilterError is 400 INVALID_REQUEST
        types=split_values(query.getall("type", [])),
        agent_ids=split_values(query.getall("agent_id", [])),
        streams=split_values(query.getall("stream", [])),
        namespace=_single(query.getall("namespace", []), "namespace")
        or request.headers.get("x-parley-namespace"),
        performatives=split_values(query.getall("performative", [])),
        actors=split_values(query.getall("actor", [])),
    ).within(principal(request))
    start = parse_position(request.headers.get("last-event-id"), "Last-Event-ID")
    if start is None:
        start = parse_position(
            _single(query.getall("from_position", []), "from_position"), "from_position"
        )
    if start is None:
        start = await _last_position(store)
    feed = _SseFeed(hub, start, event_filter)
    return EventStream(feed, background=BackgroundTask(feed.close))


event_routes = [stream_events]


class _SseFeed:
    """One client's stream: a store subscription pumped through a bounded queue."""

    def __init__(self, hub: Hub, start: int, event_filter: EventFilter) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE)
        self._error: Exception | None = None
        self._pump = Pump(hub, start, event_filter, self._queue.put, self._failed)

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
