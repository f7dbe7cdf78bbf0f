"""`/api/v1/agents/{id}/chat`, `/chat/stream` (SSE, resumable) and `/cancel`.

A sync chat waits for the turn's end (``PARLEY_EDGE_CHAT_TIMEOUT``). A streamed chat picks
the turn id, subscribes to its frames first, then sends the command: an error reply is the
HTTP error envelope, sent before any SSE byte. Each SSE event is one frame: ``event`` its
type, ``id`` ``<turn_id>:<seq>``, ``data`` its data plus ``turn_id`` and
``conversation_id``. ``GET .../chat/stream?turn_id=`` with ``Last-Event-ID`` resumes with
exactly the frames missed. The session routes reuse these handlers' bodies for ad-hoc
sessions.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import nats.js.errors
from litestar import Request, Router, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.runtime import CancelTurn, Chat, ConcurrencyPolicy, Usage
from parley.edge.body import decode_body
from parley.edge.errors import ApiError
from parley.edge.routes._runtime import error_responses, require_agent, require_session, send
from parley.edge.routes.agents import provide_namespace
from parley.edge.turn_stream import TurnFeed, client_frame, parse_last_event_id

__all__ = [
    "CancelBody",
    "ChatAnswer",
    "ChatBody",
    "ChatResponse",
    "SessionChatBody",
    "cancel_turns",
    "chat_router",
    "resume_stream",
    "start_stream",
    "sync_chat",
]

KEEPALIVE_S = 15.0
"""Seconds of silence after which a stream sends a `: keep-alive` comment."""
_FINISHED_IDLE_S = 3.0

Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class SessionChatBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /sessions/{id}/chat` and `/chat/stream`."""

    message: Annotated[str, Meta(min_length=1, max_length=200_000)]
    """The user's message."""
    context: dict[str, Any] = {}
    """Extra facts for this turn, given to the model as data."""
    files: Annotated[list[Annotated[str, Meta(max_length=256)]], Meta(max_length=16)] = []
    """Session files (ids or names) whose text is added to the message."""
    policy: ConcurrencyPolicy | None = None
    """When a turn is running: `reject` (409), `enqueue` or `interrupt`."""


class ChatBody(SessionChatBody, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /agents/{id}/chat` and `/chat/stream`."""

    conversation_id: Id | None = None
    """The session to continue; a new one is opened when absent."""


class ChatAnswer(msgspec.Struct, kw_only=True):
    """A finished turn."""

    response: str
    conversation_id: str
    turn_id: str
    tokens_used: int
    response_time_ms: float
    usage: Usage
    tool_calls: list[dict[str, Any]]
    outcome: str
    """`completed`, or `cancelled` when cancelled while waiting."""


class ChatResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}` of a sync chat."""

    data: ChatAnswer


class CancelBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional body of `POST /agents/{id}/cancel`: which turn (default: every running one)."""

    conversation_id: Id | None = None
    turn_id: Id | None = None


class CancelledTurn(msgspec.Struct, kw_only=True):
    """A turn asked to stop."""

    conversation_id: str | None
    turn_id: str | None


class CancelResult(msgspec.Struct, kw_only=True):
    """What a cancel did."""

    cancelled: bool
    turns: list[CancelledTurn]


class CancelResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}` of a cancel."""

    data: CancelResult


# --- shared with the session routes ------------------------------------------------------------


def _chat(
    ns: str, body: SessionChatBody, turn_id: str, agent_id: str | None, session_id: str | None
) -> tuple[Chat, str | None]:
    if isinstance(body, ChatBody) and body.conversation_id is not None:
        session_id = body.conversation_id
    return (
        Chat(
            namespace=ns,
            message=body.message,
            agent_id=agent_id,
            session_id=session_id,
            turn_id=turn_id,
            context=body.context,
            files=body.files,
            policy=body.policy,
        ),
        session_id,
    )


async def sync_chat(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    body: SessionChatBody,
    *,
    agent_id: str | None,
    session_id: str | None = None,
) -> ChatResponse:
    """Run a turn and answer with its result."""
    command, _ = _chat(ns, body, new_id(), agent_id, session_id)
    command.min_position = state.projection.applied_position
    reply = await send(
        request, state, "chat", command, within=state.settings.chat_timeout, strict=False
    )
    result = reply.chat
    if result is None:
        raise ApiError(ErrorCode.INTERNAL_ERROR, "the runtime answered the chat without a result")
    return ChatResponse(
        data=ChatAnswer(
            response=result.response,
            conversation_id=result.session_id,
            turn_id=result.turn_id,
            tokens_used=result.tokens_used,
            response_time_ms=result.response_time_ms,
            usage=result.usage,
            tool_calls=result.tool_calls,
            outcome=result.outcome,
        )
    )


async def start_stream(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    body: SessionChatBody,
    *,
    agent_id: str | None,
    session_id: str | None = None,
) -> ServerSentEvent:
    """Start a streamed turn; errors before it starts are the HTTP error envelope."""
    turn_id = new_id()
    command, session_id = _chat(ns, body, turn_id, agent_id, session_id)
    command.stream = True
    command.min_position = state.projection.applied_position
    feed = await TurnFeed.live(state.nc, turn_id)  # before the command: no frame missed
    try:
        reply = await send(
            request,
            state,
            "chat",
            command,
            within=state.settings.chat_timeout,
            strict=False,
            wait=False,
        )
    except BaseException:
        await feed.close()
        raise
    conversation_id = reply.session_id or session_id
    events = _sse(feed, conversation_id, 0, state.settings.stream_idle_timeout)
    return ServerSentEvent(events, background=BackgroundTask(feed.close))


async def resume_stream(
    request: Request[Any, Any, Any],
    state: State,
    *,
    turn_id: str | None,
    last_event_id: str | None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> ServerSentEvent:
    """Replay a turn's frames after ``last_event_id``, then follow it to its end."""
    raw = request.headers.get("last-event-id") or last_event_id
    try:
        turn_id, after = parse_last_event_id(raw, turn_id)
    except ValueError as exc:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, str(exc), [{"field": "header.Last-Event-ID"}]
        ) from None
    ref = state.runtime.turn(turn_id) if turn_id else None
    if (
        ref is None
        or (agent_id is not None and ref.agent_id != agent_id)
        or (session_id is not None and ref.session_id != session_id)
    ):
        raise ApiError(
            ErrorCode.NOT_FOUND,
            "no such turn here; pass the turn_id of a turn of this conversation",
            {"turn_id": (turn_id or "")[:64]},
        )
    try:
        feed = await TurnFeed.replay(state.nc, ref.turn_id)
    except nats.js.errors.NotFoundError:
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "no turn frames are kept yet (the runtime creates the delta stream); retry shortly",
            headers={"Retry-After": "1"},
        ) from None
    idle = state.settings.stream_idle_timeout
    if ref.outcome is not None:  # finished: its frames are all kept already, or gone
        idle = min(idle, _FINISHED_IDLE_S)
    events = _sse(feed, ref.session_id, after, idle)
    return ServerSentEvent(events, background=BackgroundTask(feed.close))


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


async def cancel_turns(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    *,
    agent_id: str | None,
    session_id: str | None,
    turn_id: str | None,
) -> CancelResponse:
    """Cancel one turn, or every running turn of the agent when neither id is given."""
    if session_id is None and turn_id is None:
        running = [
            s
            for s in state.runtime.sessions(ns, agent_id)
            if s.active_turn is not None and agent_id is not None
        ]
        if not running:
            raise ApiError(
                ErrorCode.NO_ACTIVE_TURN, f"agent {agent_id} has no running turn to cancel"
            )
        targets = [(s.id, s.active_turn.turn_id) for s in running]
    else:
        targets = [(session_id, turn_id)]
    done = []
    for sid, tid in targets:
        command = CancelTurn(namespace=ns, session_id=sid, agent_id=agent_id, turn_id=tid)
        reply = await send(request, state, "cancel_turn", command, strict=False)
        done.append(
            CancelledTurn(conversation_id=reply.session_id or sid, turn_id=reply.turn_id or tid)
        )
    return CancelResponse(data=CancelResult(cancelled=True, turns=done))


# --- agent routes --------------------------------------------------------------------------


async def _agent_chat_body(
    request: Request[Any, Any, Any], state: State, ns: str, agent_id: str
) -> ChatBody:
    require_agent(state, ns, agent_id)
    body = await decode_body(request, ChatBody)
    if body.conversation_id is not None:
        require_session(state, ns, body.conversation_id, agent_id=agent_id)
    return body


@post(
    "/{agent_id:str}/chat",
    status_code=200,
    summary="Chat with an agent",
    description="One message → one turn; answers when the turn ends.",
    opt={"body": ChatBody},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 502, 503, 504),
)
async def agent_chat(
    request: Request[Any, Any, Any], state: State, ns: str, agent_id: str
) -> ChatResponse:
    """Send a message to an agent and wait for its answer."""
    body = await _agent_chat_body(request, state, ns, agent_id)
    return await sync_chat(request, state, ns, body, agent_id=agent_id)


@post(
    "/{agent_id:str}/chat/stream",
    status_code=200,
    summary="Chat with an agent, streamed (SSE)",
    description="Events `start`, `token`, `plan`, `tool_call`, `tool_result`, then `end` or"
    " `error`; `id` is `<turn_id>:<seq>`.",
    opt={"body": ChatBody},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 503, 504),
)
async def agent_chat_stream(
    request: Request[Any, Any, Any], state: State, ns: str, agent_id: str
) -> ServerSentEvent:
    """Send a message to an agent and stream the turn as Server-Sent Events."""
    body = await _agent_chat_body(request, state, ns, agent_id)
    return await start_stream(request, state, ns, body, agent_id=agent_id)


@get(
    "/{agent_id:str}/chat/stream",
    summary="Resume a streamed turn (SSE)",
    description="`turn_id` and `Last-Event-ID` (or `last_event_id`) give exactly the frames"
    " missed, then the rest of the turn.",
    responses=error_responses(400, 404, 503),
)
async def agent_chat_resume(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    agent_id: str,
    turn_id: Annotated[str | None, Parameter(required=False)] = None,
    last_event_id: Annotated[str | None, Parameter(required=False)] = None,
) -> ServerSentEvent:
    """Resume an agent's streamed turn."""
    require_agent(state, ns, agent_id)
    return await resume_stream(
        request, state, turn_id=turn_id, last_event_id=last_event_id, agent_id=agent_id
    )


@post(
    "/{agent_id:str}/cancel",
    status_code=200,
    summary="Cancel an agent's running turn",
    description='Optional body `{"conversation_id", "turn_id"}`; without it every running turn'
    " of the agent is cancelled. `409 NO_ACTIVE_TURN` when none runs.",
    opt={"body": CancelBody, "body_optional": True},
    responses=error_responses(400, 404, 409, 415, 422, 503, 504),
)
async def agent_cancel(
    request: Request[Any, Any, Any], state: State, ns: str, agent_id: str
) -> CancelResponse:
    """Cancel a running turn."""
    require_agent(state, ns, agent_id)
    body = await decode_body(request, CancelBody, optional=True)
    if body.conversation_id is not None:
        require_session(state, ns, body.conversation_id, agent_id=agent_id)
    return await cancel_turns(
        request,
        state,
        ns,
        agent_id=agent_id,
        session_id=body.conversation_id,
        turn_id=body.turn_id,
    )


chat_router = Router(
    path="/api/v1/agents",
    route_handlers=[agent_chat, agent_chat_stream, agent_chat_resume, agent_cancel],
    dependencies={"ns": Provide(provide_namespace)},
    tags=["chat"],
)
"""The agent chat routes."""
