"""A chat turn streamed as Server-Sent Events: start it, or resume it after a disconnect.

A streamed chat picks the turn id, subscribes to its frames first, then sends the command: an
error reply is the HTTP error envelope, sent before any SSE byte. Each SSE event is one frame:
``event`` its type, ``id`` ``<turn_id>:<seq>``, ``data`` its data plus ``turn_id`` and
``conversation_id``. Resuming with ``Last-Event-ID`` gives exactly the frames missed.
"""

from collections.abc import AsyncIterator
from typing import Annotated
from typing import Any

import msgspec
import nats.js.errors
from litestar import Request
from litestar.background_tasks import BackgroundTask
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import Chat
from parley.edge.dependencies import Writes
from parley.edge.http.errors import ApiError
from parley.edge.http.eventstream import EventStream
from parley.edge.streams.turn import TurnFeed
from parley.edge.streams.turn import client_frame
from parley.edge.streams.turn import parse_last_event_id
from parley.edge.streams.turn import start_turn

__all__ = ["KEEPALIVE_S", "LastEventId", "TurnId", "resume_stream", "start_stream"]

KEEPALIVE_S = 15.0
"""Seconds of silence after which a stream sends a `: keep-alive` comment."""
_FINISHED_IDLE_S = 3.0

TurnId = Annotated[str | None, Parameter(required=False)]
"""The `turn_id` query parameter of a resume."""
LastEventId = Annotated[str | None, Parameter(required=False)]
"""The `last_event_id` query parameter of a resume (the `Last-Event-ID` header wins)."""


async def start_stream(writes: Writes, command: Chat) -> ServerSentEvent:
    """Send ``command`` as a streamed turn; errors before it starts are the HTTP envelope."""
    feed, reply = await start_turn(writes, command)
    conversation_id = reply.session_id or command.session_id
    events = _sse(feed, conversation_id, 0, writes.edge.settings.stream_idle_timeout)
    return EventStream(events, background=BackgroundTask(feed.close))


async def resume_stream(
    request: Request[Any, Any, Any],
    writes: Writes,
    *,
    turn_id: str | None,
    last_event_id: str | None,
    namespace: str,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> ServerSentEvent:
    """Replay a turn's frames after ``last_event_id``, then follow it to its end (a turn of
    another namespace's session is ``404``, like any other resource of it)."""
    edge = writes.edge
    raw = request.headers.get("last-event-id") or last_event_id
    try:
        turn_id, after = parse_last_event_id(raw, turn_id)
    except ValueError as exc:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, str(exc), [{"field": "header.Last-Event-ID"}]
        ) from None
    ref = edge.runtime.turn(turn_id) if turn_id else None
    if (
        ref is None
        or edge.runtime.session_brief(namespace, ref.session_id) is None
        or (agent_id is not None and ref.agent_id != agent_id)
        or (session_id is not None and ref.session_id != session_id)
    ):
        raise ApiError(
            ErrorCode.NOT_FOUND,
            "no such turn here; pass the turn_id of a turn of this conversation",
            {"turn_id": (turn_id or "")[:64]},
        )
    try:
        feed = await TurnFeed.replay(edge.nc, ref.turn_id)
    except nats.js.errors.NotFoundError:
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "no turn frames are kept yet (the runtime creates the delta stream); retry shortly",
            headers={"Retry-After": "1"},
        ) from None
    idle = edge.settings.stream_idle_timeout
    if ref.outcome is not None:  # finished: its frames are all kept already, or gone
        idle = min(idle, _FINISHED_IDLE_S)
    events = _sse(feed, ref.session_id, after, idle)
    return EventStream(events, background=BackgroundTask(feed.close))


async def _sse(
    feed: TurnFeed, conversation_id: str | None, after: int, idle: float
) -> AsyncIterator[ServerSentEventMessage]:
    async for frame in feed.frames(after=after, idle=idle, tick=KEEPALIVE_S):
        if frame is None:
            yield ServerSentEventMessage(data=None, comment="keep-alive")
            continue
        yield ServerSentEventMessage(
            data=msgspec.json.encode(client_frame(frame, conversation_id)).decode(),
            event=frame.type,
            id=f"{frame.turn_id}:{frame.seq}" if frame.seq else None,
        )
