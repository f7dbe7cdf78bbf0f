"""Chat in a session: `/api/v1/sessions/{id}/chat`, `/chat/stream` (SSE, resumable) and
`/cancel`, as the agent chat routes (:mod:`.chat`) work for an agent."""

from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from parley.contracts.runtime import Chat
from parley.edge.controllers.chat import (
    CancelResult,
    ChatAnswer,
    SessionChatBody,
    cancel_turns,
    chat_command,
    sync_chat,
)
from parley.edge.controllers.lookups import SESSION_SCOPE, SessionScope
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses
from parley.edge.streams.turn_sse import LastEventId, TurnId, resume_stream, start_stream

__all__ = ["session_chat_router"]


async def _chat_in(request: Request[Any, Any, Any], session: SessionScope) -> Chat:
    session.live()
    body = await decode_body(request, SessionChatBody)
    return chat_command(session.ns, body, agent_id=None, session_id=session.id)


@post(
    "/{session_id:str}/chat",
    status_code=200,
    summary="Chat in a session",
    opt={"body": SessionChatBody},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 502, 503, 504),
)
async def session_chat(
    request: Request[Any, Any, Any], session: NamedDependency[SessionScope]
) -> Data[ChatAnswer]:
    """Send a message in a session and wait for the answer."""
    return await sync_chat(session.writes, await _chat_in(request, session))


@post(
    "/{session_id:str}/chat/stream",
    status_code=200,
    summary="Chat in a session, streamed (SSE)",
    opt={"body": SessionChatBody},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 503, 504),
)
async def session_chat_stream(
    request: Request[Any, Any, Any], session: NamedDependency[SessionScope]
) -> ServerSentEvent:
    """Send a message in a session and stream the turn."""
    return await start_stream(session.writes, await _chat_in(request, session))


@get(
    "/{session_id:str}/chat/stream",
    summary="Resume a session's streamed turn (SSE)",
    responses=error_responses(400, 404, 503),
)
async def session_chat_resume(
    request: Request[Any, Any, Any],
    session: NamedDependency[SessionScope],
    turn_id: TurnId = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    """Resume a streamed turn from `Last-Event-ID`."""
    session.live()
    return await resume_stream(
        request,
        session.writes,
        turn_id=turn_id,
        last_event_id=last_event_id,
        namespace=session.ns,
        session_id=session.id,
    )


@post(
    "/{session_id:str}/cancel",
    status_code=200,
    summary="Cancel a session's running turn",
    responses=error_responses(404, 409, 503, 504),
)
async def session_cancel(session: NamedDependency[SessionScope]) -> Data[CancelResult]:
    """Cancel the running turn; `409 NO_ACTIVE_TURN` when none runs."""
    session.live()
    return await cancel_turns(
        session.writes,
        session.runtime,
        session.ns,
        agent_id=None,
        session_id=session.id,
        turn_id=None,
    )


session_chat_router = Router(
    path="/api/v1/sessions",
    route_handlers=[session_chat, session_chat_stream, session_chat_resume, session_cancel],
    dependencies=SESSION_SCOPE,
    tags=["sessions"],
)
"""The session chat routes."""
