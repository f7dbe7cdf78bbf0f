"""Turns of a conversation, shared by the agent routes (:mod:`.chat`), the session routes
(:mod:`.session_chat`) and the chat WebSocket: the bodies, the answers, the `chat` command,
a sync turn and a cancel.

A sync chat waits for the turn's end (``PARLEY_EDGE_CHAT_TIMEOUT``), or until the runtime
running it is gone (:mod:`.runner_watch`); a streamed one is
:mod:`parley.edge.streams.turn_sse`.
"""

import asyncio
from typing import Annotated
from typing import Any

import msgspec
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import Id
from parley.contracts.ids import new_id
from parley.contracts.runtime import CancelTurn
from parley.contracts.runtime import Chat
from parley.contracts.runtime import ConcurrencyPolicy
from parley.contracts.runtime import Usage
from parley.edge.controllers.runner_watch import RunnerWatch
from parley.edge.dependencies import Writes
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.views import as_view

__all__ = [
    "CancelBody",
    "CancelResult",
    "CancelledTurn",
    "ChatAnswer",
    "ChatBody",
    "SessionChatBody",
    "cancel_turns",
    "chat_command",
    "sync_chat",
]


UNPRICED = (
    "the model has no price in the models catalogue: usage.cost_usd leaves its calls out"
    " (budgets and quotas count them as 0)"
)


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
    warnings: list[str] = []
    """What the turn could not vouch for, e.g. a cost left unknown (`usage.price_unknown`)."""


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


def chat_command(
    ns: str, body: SessionChatBody, *, agent_id: str | None = None, session_id: str | None = None
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
    command.min_position = writes.edge.positions.runtime
    within = writes.edge.settings.chat_timeout
    watch = RunnerWatch(writes, command)
    try:
        reply = await writes.runtime("chat", command, within=within, strict=False)
    except asyncio.CancelledError:
        waiter = asyncio.current_task()
        if not watch.gone or waiter is None or waiter.cancelling() > 1:
            raise  # the client went away, or the edge is stopping
        waiter.uncancel()
        raise await watch.orphaned() from None
    finally:
        watch.stop()
    result = reply.chat
    if result is None:
        raise ApiError(ErrorCode.INTERNAL_ERROR, "the runtime answered the chat without a result")
    warnings = [UNPRICED] if result.usage.price_unknown else []
    answer = as_view(ChatAnswer, result, conversation_id=result.session_id, warnings=warnings)
    return Data(data=answer)


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
