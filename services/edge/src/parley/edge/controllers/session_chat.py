"""Chat in a session: `/api/v1/sessions/{id}/chat`, `/chat/stream` (SSE, resumable) and
`/cancel`, the routes of :func:`~.turn_routes.turn_routes` for a session."""

from typing import Any

from litestar import Router
from litestar.di import NamedDependency
from litestar.di import Provide

from parley.edge.controllers.lookups import SESSION_SCOPE
from parley.edge.controllers.lookups import SessionScope
from parley.edge.controllers.turn_routes import Turns
from parley.edge.controllers.turn_routes import turn_routes
from parley.edge.controllers.turns import CancelResult
from parley.edge.controllers.turns import SessionChatBody
from parley.edge.controllers.turns import cancel_turns
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses

__all__ = ["SessionTurns", "session_chat_router"]


class SessionTurns(Turns):
    """The turns of the session `{session_id}`."""

    body = SessionChatBody

    def __init__(self, session: NamedDependency[SessionScope]) -> None:
        self.session = self.scope = session

    async def cancel(self) -> Data[CancelResult]:
        where, scope = self.owner(), self.session
        return await cancel_turns(
            scope.writes, scope.runtime, scope.ns, agent_id=None, turn_id=None, **where
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
    route_handlers=turn_routes("session_id", SessionTurns, _DOCS),
    dependencies={**SESSION_SCOPE, "turns": Provide(SessionTurns, sync_to_thread=False)},
    tags=["sessions"],
)
"""The session chat routes."""
