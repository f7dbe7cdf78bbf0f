"""The turn routes of whoever owns conversations, built once for agents (:mod:`.chat`) and
sessions (:mod:`.session_chat`): `POST /{id}/chat`, `POST|GET /{id}/chat/stream` (SSE,
resumable) and `POST /{id}/cancel`.

The routes are the same; what differs is behind :class:`Turns` (which body, which checks,
what a cancel targets) and in the documentation each router gives.
"""

from typing import Any

from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.response import ServerSentEvent

from parley.contracts.runtime import Chat
from parley.edge.controllers.lookups import AgentScope
from parley.edge.controllers.lookups import SessionScope
from parley.edge.controllers.turns import CancelResult
from parley.edge.controllers.turns import ChatAnswer
from parley.edge.controllers.turns import SessionChatBody
from parley.edge.controllers.turns import chat_command
from parley.edge.controllers.turns import sync_chat
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses
from parley.edge.streams.turn_sse import LastEventId
from parley.edge.streams.turn_sse import TurnId
from parley.edge.streams.turn_sse import resume_stream
from parley.edge.streams.turn_sse import start_stream

__all__ = ["Turns", "turn_routes"]

_CHAT_ERRORS = (400, 402, 404, 409, 413, 415, 422, 503, 504)


class Turns:
    """What the turn routes need of a conversation's owner (one per request, provided as
    the dependency ``turns``)."""

    scope: AgentScope | SessionScope
    """The owner's scope: the request, its namespace and writes, the owner's id."""
    body: type[SessionChatBody]
    """The body of a chat."""

    async def chat(self) -> Chat:
        """The `chat` command of the request's body, once the owner and the body are checked."""
        where = self.owner()
        body = await self.scope.body(self.body)
        self.check(body)
        return chat_command(self.scope.ns, body, **where)

    def check(self, body: SessionChatBody) -> None:
        """Refuse a chat ``body`` the owner cannot take (after the owner is found live)."""

    def owner(self) -> dict[str, str]:
        """Check the owner is live; the id naming it (``agent_id`` or ``session_id``)."""
        self.scope.present()
        return {self.scope.id_param: self.scope.id}

    async def cancel(self) -> Data[CancelResult]:
        """Cancel what the request names."""
        raise NotImplementedError


def turn_routes(
    owner: str, kind: type[Turns], docs: dict[str, dict[str, Any]], *, stream_alias: bool = False
) -> list[HTTPRouteHandler]:
    """The turn routes under `/{<owner>}`, whose chats take a ``kind.body``; ``docs`` gives
    each route's summary, description (and for `cancel` its body and errors) by route:
    `chat`, `chat_stream`, `chat_resume`, `cancel`. With ``stream_alias``, `/{<owner>}/stream`
    is the same route as `/{<owner>}/chat/stream` (both methods)."""

    async def chat(turns: NamedDependency[Turns]) -> Data[ChatAnswer]:
        return await sync_chat(turns.scope.writes, await turns.chat())

    async def chat_stream(turns: NamedDependency[Turns]) -> ServerSentEvent:
        return await start_stream(turns.scope.writes, await turns.chat())

    async def chat_resume(
        turns: NamedDependency[Turns], turn_id: TurnId = None, last_event_id: LastEventId = None
    ) -> ServerSentEvent:
        where, scope = turns.owner(), turns.scope
        return await resume_stream(
            scope.request,
            scope.writes,
            turn_id=turn_id,
            last_event_id=last_event_id,
            namespace=scope.ns,
            **where,
        )

    async def cancel(turns: NamedDependency[Turns]) -> Data[CancelResult]:
        return await turns.cancel()

    with_body: dict[str, Any] = {"opt": {"body": kind.body}, "status_code": 200}
    routes: tuple[tuple[Any, str, Any, dict[str, Any]], ...] = (
        (post, "/chat", chat, {**with_body, "responses": error_responses(*_CHAT_ERRORS, 502)}),
        (
            post,
            "/chat/stream",
            chat_stream,
            {**with_body, "responses": error_responses(*_CHAT_ERRORS)},
        ),
        (get, "/chat/stream", chat_resume, {"responses": error_responses(400, 404, 503)}),
        (post, "/cancel", cancel, {"status_code": 200}),
    )
    prefix, handlers = owner.removesuffix("_id"), []
    for method, tail, handler, route in routes:
        documented = {**route, **docs[handler.__name__]}
        handler.__name__ = handler.__qualname__ = f"{prefix}_{handler.__name__}"
        paths = [f"/{{{owner}:str}}{tail}"]
        if stream_alias and tail == "/chat/stream":
            paths.append(f"/{{{owner}:str}}/stream")
        handlers.append(method(paths, **documented)(handler))
    return handlers
