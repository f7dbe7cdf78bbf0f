"""`/api/v1/agents/{id}/chat`, `/chat/stream` (SSE, resumable) and `/cancel`.

A sync chat waits for the turn's end (``PARLEY_EDGE_CHAT_TIMEOUT``); a streamed one is
:mod:`parley.edge.streams.turn_sse`. The session routes reuse :func:`sync_chat`,
:func:`chat_command` and :func:`cancel_turns` for their conversations.
"""

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import Id, new_id
from parley.contracts.runtime import CancelTurn, Chat, ConcurrencyPolicy, Usage
from parley.edge.controllers.lookups import AGENT_SCOPE, AgentScope
from parley.edge.dependencies import Writes
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError, error_responses
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.streams.turn_sse import LastEventId, TurnId, resume_stream, start_stream

__all__ = [
    "CancelBody",
    "CancelResult",
    "ChatAnswer",
    "ChatBody",
    "SessionChatBody",
    "cancel_turns",
    "chat_command",
    "chat_router",
    "sync_chat",
]


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


# --- shared with the session routes ------------------------------------------------------------


def chat_command(
    ns: str, body: SessionChatBody, *, agent_id: str | None, session_id: str | None = None
) -> Chat:
    """The `chat` command for ``body`` (its `conversation_id`, if any, names the session)."""
    if isinstance(body, ChatBody) and body.conversation_id is not None:
        session_id = body.conversation_id
    return Chat(
        namespace=ns,
        message=body.message,
        agent_id=agent_id,
        session_id=session_id,
        turn_id=new_id(),
        context=body.context,
        files=body.files,
        policy=body.policy,
    )


async def sync_chat(writes: Writes, command: Chat) -> Data[ChatAnswer]:
    """Run a turn and answer with its result."""
    command.min_position = writes.edge.agents.applied_position
    within = writes.edge.settings.chat_timeout
    reply = await writes.runtime("chat", command, within=within, strict=False)
    result = reply.chat
    if result is None:
        raise ApiError(ErrorCode.INTERNAL_ERROR, "the runtime answered the chat without a result")
    return Data(
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


async def cancel_turns(
    writes: Writes,
    runtime: RuntimeProjection,
    ns: str,
    *,
    agent_id: str | None,
    session_id: str | None,
    turn_id: str | None,
) -> Data[CancelResult]:
    """Cancel one turn, or every running turn of the agent when neither id is given."""
    targets: list[tuple[str | None, str | None]]
    if session_id is None and turn_id is None:
        running = [
            (s.id, s.active_turn.turn_id)
            for s in runtime.sessions(ns, agent_id)
            if s.active_turn is not None and agent_id is not None
        ]
        if not running:
            raise ApiError(
                ErrorCode.NO_ACTIVE_TURN, f"agent {agent_id} has no running turn to cancel"
            )
        targets = list(running)
    else:
        targets = [(session_id, turn_id)]
    done = []
    for sid, tid in targets:
        command = CancelTurn(namespace=ns, session_id=sid, agent_id=agent_id, turn_id=tid)
        reply = await writes.runtime("cancel_turn", command, strict=False)
        done.append(
            CancelledTurn(conversation_id=reply.session_id or sid, turn_id=reply.turn_id or tid)
        )
    return Data(data=CancelResult(cancelled=True, turns=done))


# --- agent routes --------------------------------------------------------------------------


async def _agent_chat(request: Request[Any, Any, Any], agent: AgentScope) -> Chat:
    agent.live()
    body = await decode_body(request, ChatBody)
    if body.conversation_id is not None:
        agent.session(body.conversation_id)
    return chat_command(agent.ns, body, agent_id=agent.id)


@post(
    "/{agent_id:str}/chat",
    status_code=200,
    summary="Chat with an agent",
    description="One message → one turn; answers when the turn ends.",
    opt={"body": ChatBody},
    responses=error_responses(400, 402, 404, 409, 413, 415, 422, 502, 503, 504),
)
async def agent_chat(
    request: Request[Any, Any, Any], agent: NamedDependency[AgentScope]
) -> Data[ChatAnswer]:
    """Send a message to an agent and wait for its answer."""
    return await sync_chat(agent.writes, await _agent_chat(request, agent))


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
    request: Request[Any, Any, Any], agent: NamedDependency[AgentScope]
) -> ServerSentEvent:
    """Send a message to an agent and stream the turn as Server-Sent Events."""
    return await start_stream(agent.writes, await _agent_chat(request, agent))


@get(
    "/{agent_id:str}/chat/stream",
    summary="Resume a streamed turn (SSE)",
    description="`turn_id` and `Last-Event-ID` (or `last_event_id`) give exactly the frames"
    " missed, then the rest of the turn.",
    responses=error_responses(400, 404, 503),
)
async def agent_chat_resume(
    request: Request[Any, Any, Any],
    agent: NamedDependency[AgentScope],
    turn_id: TurnId = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    """Resume an agent's streamed turn."""
    agent.live()
    return await resume_stream(
        request,
        agent.writes,
        turn_id=turn_id,
        last_event_id=last_event_id,
        namespace=agent.ns,
        agent_id=agent.id,
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
    request: Request[Any, Any, Any], agent: NamedDependency[AgentScope]
) -> Data[CancelResult]:
    """Cancel a running turn."""
    agent.live()
    body = await decode_body(request, CancelBody, optional=True)
    if body.conversation_id is not None:
        agent.session(body.conversation_id)
    return await cancel_turns(
        agent.writes,
        agent.runtime,
        agent.ns,
        agent_id=agent.id,
        session_id=body.conversation_id,
        turn_id=body.turn_id,
    )


chat_router = Router(
    path="/api/v1/agents",
    route_handlers=[agent_chat, agent_chat_stream, agent_chat_resume, agent_cancel],
    dependencies=AGENT_SCOPE,
    tags=["chat"],
)
"""The agent chat routes."""
