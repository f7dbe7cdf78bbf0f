"""Chat in a session: `/api/v1/sessions/{id}/chat`, `/chat/stream` (SSE, resumable) and
`/cancel`, the routes of :func:`~.turn_routes.turn_routes` for a session."""

from typing import Any

from litestar import Request, Router
from litestar.di import NamedDependency, Provide

from parley.contracts.runtime import Chat
from parley.edge.controllers.lookups import SESSION_SCOPE, SessionScope
from parley.edge.controllers.turn_routes import Turns, turn_routes
from parley.edge.controllers.turns import CancelResult, SessionChatBody, cancel_turns, chat_command
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses

__all__ = ["SessionTurns", "session_chat_router"]


class SessionTurns(Turns):
    """The turns of the session `{session_id}`."""

    def __init__(self, session: NamedDependency[SessionScope]) -> None:
        self.session, self.writes, self.ns = session, session.writes, session.ns

    async def chat(self, request: Request[Any, Any, Any]) -> Chat:
        self.session.live()
        body = await decode_body(request, SessionChatBody)
        return chat_command(self.ns, body, agent_id=None, session_id=self.session.id)

    def owner(self) -> dict[str, str]:
        self.session.live()
        return {"session_id": self.session.id}

    async def cancel(self, request: Request[Any, Any, Any]) -> Data[CancelResult]:
        where = self.owner()
        runtime = self.session.runtime
        return await cancel_turns(
            self.writes, runtime, self.ns, agent_id=None, turn_id=None, **where
        )


_DOCS: dict[str, dict[str, Any]] = {
    "chat": {"summary": "Chat in a session"},
    "chat_stream": {"summary": "Chat in a session, streamed (SSE)"},
    "chat_resume": {"summary": "Resume a session's streamed turn (SSE)"},
    "cancel": {
        "summary": "Cancel a session's running turn",
        "responses": error_responses(404, 409, 503, 504),
    },
}

session_chat_router = Router(
    path="/api/v1/sessions",
    route_handlers=turn_routes("session_id", SessionChatBody, _DOCS),
    dependencies={**SESSION_SCOPE, "turns": Provide(SessionTurns, sync_to_thread=False)},
    tags=["sessions"],
)
"""The session chat routes."""
