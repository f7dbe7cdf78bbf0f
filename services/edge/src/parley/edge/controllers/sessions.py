"""`/api/v1/sessions`: conversations, for an agent or ad hoc with their own settings.

Writes are runtime commands; reads come from the runtime projection, after waiting for the
command's position (read-your-writes). Chat on a session works like the agent chat
(:mod:`parley.edge.controllers.chat`); files are in :mod:`parley.edge.controllers.files`.
"""

from typing import Annotated
from typing import Any

import msgspec
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import patch
from litestar import post
from litestar import put
from litestar.di import NamedDependency
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import Id
from parley.contracts.registry import ToolSpec
from parley.contracts.runtime import CreateSession
from parley.contracts.runtime import DeleteSession
from parley.contracts.runtime import DeleteSessions
from parley.contracts.runtime import SessionPatch
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import SetSessionTools
from parley.contracts.runtime import UpdateSession
from parley.edge.controllers.lookups import SESSION_SCOPE
from parley.edge.controllers.lookups import SessionScope
from parley.edge.controllers.lookups import require_agent
from parley.edge.controllers.lookups import require_session
from parley.edge.controllers.resources import SCOPE
from parley.edge.controllers.resources import Scope
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import versioned
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.paging import Paging
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.runtime_views import SessionDetail
from parley.edge.projections.runtime_views import SessionView

__all__ = ["session_router"]

PREFIX = "/api/v1/sessions"
_DELETE_BATCH = 10_000


class CreateSessionBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /sessions`: an agent's conversation, or ad-hoc `settings`."""

    agent_id: Id | None = None
    """The agent to talk to; its settings apply where `settings` leaves a field unset."""
    settings: SessionSettings | None = None
    """Provider, model, persona, system prompt, params, tools, strategy, concurrency."""
    title: Annotated[str, Meta(max_length=256)] | None = None


class ToolsBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `PUT /sessions/{id}/tools`: the session's new tools."""

    tools: Annotated[list[ToolSpec], Meta(max_length=64)]


class SessionPatchResponse(msgspec.Struct, kw_only=True):
    """The session after a settings change, and what changed."""

    data: SessionDetail
    report: dict[str, Any]
    """`changed`, `skipped` and `failed` fields."""


class DeletedCount(msgspec.Struct, kw_only=True):
    """How many sessions were deleted."""

    deleted: int


@post(
    "/",
    status_code=201,
    summary="Open a session",
    opt={"body": CreateSessionBody, "body_optional": True},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def create_session(ctx: NamedDependency[Scope]) -> Response[Data[SessionDetail]]:
    """Open a conversation with an agent, or ad hoc with its own settings."""
    body = await ctx.body(CreateSessionBody, optional=True)
    agents, ns = ctx.edge.agents, ctx.ns
    if body.agent_id is not None:
        require_agent(agents, ns, body.agent_id)
    command = CreateSession(
        namespace=ns,
        agent_id=body.agent_id,
        settings=body.settings or SessionSettings(),
        title=body.title,
        min_position=ctx.edge.positions.runtime,
    )
    reply = await ctx.writes.runtime("create_session", command)
    view = require_session(ctx.edge.runtime, ns, reply.session_id or "")
    return versioned(view, 201, Location=f"{PREFIX}/{view.id}")


@get("/", summary="List sessions", responses=error_responses(400, 422))
async def list_sessions(
    paging: NamedDependency[Paging],
    runtime: NamedDependency[RuntimeProjection],
    ns: NamedDependency[str],
    agent_id: Annotated[str | None, Parameter(required=False)] = None,
) -> Page[SessionView]:
    """A page of the namespace's sessions, oldest first."""
    views = runtime.sessions(ns, agent_id)
    return paging.page(views, lambda v: f"{v.created_at}\x00{v.id}")


@get("/{session_id:str}", summary="Read a session", responses=error_responses(404))
async def get_session(session: NamedDependency[SessionScope]) -> Response[Data[SessionDetail]]:
    """A session's settings, files and history; its version is the `ETag`."""
    return versioned(session.live())


@patch(
    "/{session_id:str}",
    summary="Change a session's settings",
    description="All or nothing: a field that cannot change is `422` with the report in `details`.",
    opt={"body": SessionPatch},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def update_session(
    session: NamedDependency[SessionScope],
    expected_version: NamedDependency[int | None],
) -> SessionPatchResponse:
    """Change settings; the answer reports changed, skipped and failed fields."""
    session.live()
    change = await session.body(SessionPatch)
    command = UpdateSession(
        namespace=session.ns, session_id=session.id, patch=change, expected_version=expected_version
    )
    reply = await session.writes.runtime("update_session", command)
    report = reply.report or {"changed": [], "skipped": [], "failed": []}
    if report.get("failed"):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR, "some settings could not change; none did", report
        )
    return SessionPatchResponse(data=session.live(), report=report)


@put(
    "/{session_id:str}/tools",
    summary="Replace a session's tools",
    opt={"body": ToolsBody},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def set_tools(
    session: NamedDependency[SessionScope],
    expected_version: NamedDependency[int | None],
) -> Response[Data[SessionDetail]]:
    """`{"tools": [...]}` replaces the session's tools."""
    session.live()
    body = await session.body(ToolsBody)
    command = SetSessionTools(
        namespace=session.ns,
        session_id=session.id,
        tools=body.tools,
        expected_version=expected_version,
    )
    await session.writes.runtime("set_session_tools", command)
    return versioned(session.live())


@delete(
    "/{session_id:str}",
    status_code=204,
    summary="Delete a session",
    responses=error_responses(404, 503, 504),
)
async def delete_session(session: NamedDependency[SessionScope]) -> None:
    """Delete a session: its events stay, it leaves every view."""
    session.live()
    command = DeleteSession(namespace=session.ns, session_id=session.id)
    await session.writes.runtime("delete_session", command)


@delete(
    "/",
    status_code=200,
    summary="Delete every session of the namespace",
    description="`agent_id` limits it to one agent's sessions. Answers the count deleted.",
    responses=error_responses(422, 503, 504),
)
async def delete_sessions(
    ctx: NamedDependency[Scope],
    agent_id: Annotated[str | None, Parameter(required=False)] = None,
) -> Data[DeletedCount]:
    """Delete all the namespace's sessions (or one agent's)."""
    ids = ctx.edge.runtime.session_ids(ctx.ns, agent_id)
    deleted = 0
    for start in range(0, len(ids), _DELETE_BATCH):
        batch = ids[start : start + _DELETE_BATCH]
        command = DeleteSessions(namespace=ctx.ns, session_ids=batch)
        reply = await ctx.writes.runtime("delete_sessions", command)
        deleted += int((reply.report or {}).get("deleted", len(batch)))
    return Data(data=DeletedCount(deleted=deleted))


session_router = Router(
    path=PREFIX,
    route_handlers=[
        create_session,
        list_sessions,
        get_session,
        update_session,
        set_tools,
        delete_session,
        delete_sessions,
    ],
    dependencies={**SESSION_SCOPE, **SCOPE},
    tags=["sessions"],
)
"""The `/api/v1/sessions` routes but chat (:mod:`.session_chat`) and files (:mod:`.files`)."""
