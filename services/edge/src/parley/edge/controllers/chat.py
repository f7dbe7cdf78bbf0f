"""`/api/v1/agents/{id}/chat`, `/chat/stream` (SSE, resumable; alias `/stream`) and `/cancel`.

The routes are :func:`~.turn_routes.turn_routes`; here is what they do for an agent: the
body may name a conversation of the agent (a new one is opened otherwise, with the id the
body gives, if any), and a cancel without a body stops every running turn of the agent.
"""

from typing import Any

from litestar import Router
from litestar.di import NamedDependency
from litestar.di import Provide

from parley.edge.controllers.conversations import check_conversation
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import AgentScope
from parley.edge.controllers.turn_routes import Turns
from parley.edge.controllers.turn_routes import turn_routes
from parley.edge.controllers.turns import CancelBody
from parley.edge.controllers.turns import CancelResult
from parley.edge.controllers.turns import ChatBody
from parley.edge.controllers.turns import SessionChatBody
from parley.edge.controllers.turns import cancel_turns
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses

__all__ = ["AgentTurns", "chat_router"]


class AgentTurns(Turns):
    """The turns of the agent `{agent_id}`; a chat may name one of its conversations."""

    body = ChatBody

    def __init__(self, agent: NamedDependency[AgentScope]) -> None:
        self.agent = self.scope = agent

    def check(self, body: SessionChatBody) -> None:
        if isinstance(body, ChatBody) and body.conversation_id is not None:
            agent = self.agent
            check_conversation(agent.runtime, agent.ns, agent.id, body.conversation_id)

    async def cancel(self) -> Data[CancelResult]:
        self.agent.live()
        body = await self.agent.body(CancelBody, optional=True)
        if body.conversation_id is not None:
            self.agent.session(body.conversation_id)
        return await cancel_turns(
            self.agent.writes,
            self.agent.runtime,
            self.agent.ns,
            agent_id=self.agent.id,
            session_id=body.conversation_id,
            turn_id=body.turn_id,
        )


_DOCS: dict[str, dict[str, Any]] = {
    "chat": {
        "summary": "Chat with an agent",
        "description": "One message → one turn; answers when the turn ends.",
    },
    "chat_stream": {
        "summary": "Chat with an agent, streamed (SSE)",
        "description": "Events `start`, `token`, `plan`, `tool_call`, `tool_result`, then `end`"
        " or `error`; `id` is `<turn_id>:<seq>`.",
    },
    "chat_resume": {
        "summary": "Resume a streamed turn (SSE)",
        "description": "`turn_id` and `Last-Event-ID` (or `last_event_id`) give exactly the"
        " frames missed, then the rest of the turn.",
    },
    "cancel": {
        "summary": "Cancel an agent's running turn",
        "description": 'Optional body `{"conversation_id", "turn_id"}`; without it every running'
        " turn of the agent is cancelled. `409 NO_ACTIVE_TURN` when none runs.",
        "opt": {"body": CancelBody, "body_optional": True},
        "responses": error_responses(400, 404, 409, 415, 422, 503, 504),
    },
}

chat_router = Router(
    path="/api/v1/agents",
    route_handlers=turn_routes("agent_id", AgentTurns, _DOCS, stream_alias=True),
    dependencies={**AGENT_SCOPE, "turns": Provide(AgentTurns, sync_to_thread=False)},
    tags=["chat"],
)
"""The agent chat routes."""
