"""Agent C's spellings of session replay and of the interaction log, as documented aliases:
`/api/v1/events/{session_id}` (list, stream, replay status and control) and
`/api/v1/interactions/{session_id}/files`. They act through the same
:class:`~parley.edge.controllers.replay.SessionReplays` as our own routes.
"""

from typing import Annotated

from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.controllers.replay import READS
from parley.edge.controllers.replay import REPLAY_SCOPE
from parley.edge.controllers.replay import REPLAY_SSE
from parley.edge.controllers.replay import SessionReplayControl
from parley.edge.controllers.replay import SessionReplays
from parley.edge.controllers.replay import control_replay
from parley.edge.controllers.replay import session_replay_router
from parley.edge.controllers.session_events import EventSelection
from parley.edge.controllers.session_events import Since
from parley.edge.controllers.session_events import Until
from parley.edge.controllers.session_events import globs_param
from parley.edge.controllers.session_events import jsonl_response
from parley.edge.controllers.session_events import log_file_name
from parley.edge.controllers.session_events import session_event_router
from parley.edge.controllers.session_events import session_events
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import error_responses
from parley.edge.http.paging import Cursor
from parley.edge.http.paging import page_by_key
from parley.edge.streams.replay import ReplayStatus

__all__ = ["replay_routes"]


_EventTypes = Annotated[
    list[str] | None,
    globs_param("Agent C's `type`: event type globs."),
]
_AGENT_C = "Agent C's spelling"


@get(
    "/{session_id:str}",
    summary="List a session's events (Agent C)",
    description=f"{_AGENT_C} of `GET /api/v1/sessions/{{id}}/events`: `event_types`,"
    " `start_time` (inclusive), `end_time` (exclusive), `limit` up to 1000, `cursor`.",
    responses=error_responses(400, 404, 422, 503),
)
async def agentc_events(
    replays: NamedDependency[SessionReplays],
    event_types: _EventTypes = None,
    start_time: Since = None,
    end_time: Until = None,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 1000,
    cursor: Cursor = None,
) -> Page[Event]:
    """A page of the session's events."""
    names = ("start_time", "end_time")
    selection = EventSelection.of_query(event_types, start_time, end_time, names=names)
    events = selection.select(await session_events(replays))
    return page_by_key(events, lambda e: f"{e.version:020d}", limit=limit, cursor=cursor)


@get(
    "/{session_id:str}/stream",
    summary="Replay a session over SSE (Agent C)",
    description=f"{_AGENT_C}: creates a replay and streams it (`Parley-Replay-Id` names it)."
    " `real_time` (default false) keeps the original spacing scaled by `speed_factor`.",
    responses=error_responses(400, 403, 404, 422, 503),
    **REPLAY_SSE,
)
async def agentc_stream(
    replays: NamedDependency[SessionReplays],
    event_types: _EventTypes = None,
    real_time: Annotated[
        bool, Parameter(description="Keep the original spacing (scaled by `speed_factor`).")
    ] = False,
    speed_factor: Annotated[float, Parameter(gt=0, le=1000, description="Speed.")] = 1.0,
) -> ServerSentEvent:
    """A new replay of the session, streamed."""
    selection = EventSelection(event_types or ())
    replay = await replays.start(selection, speed=speed_factor, real_time=real_time)
    return replays.stream(replay)


@get(
    "/{session_id:str}/replay-status",
    summary="Read a session replay's status (Agent C)",
    description=f"{_AGENT_C}: the newest replay of the session that has not ended, or"
    " `replay_id`'s.",
    responses=error_responses(404),
)
async def agentc_status(
    replays: NamedDependency[SessionReplays],
    replay_id: Annotated[str | None, Parameter(required=False)] = None,
) -> Data[ReplayStatus]:
    """A replay's status."""
    return Data(data=replays.replay(replay_id).status())


@post(
    "/{session_id:str}/replay/control",
    status_code=200,
    summary="Control a session replay (Agent C)",
    description=f"{_AGENT_C} of `POST …/replays/{{replay_id}}/control`; the body may name"
    " `replay_id` (default: the newest replay that has not ended). `position` may be a time.",
    opt={**READS, "body": SessionReplayControl},
    responses=error_responses(400, 404, 409, 413, 415, 422),
)
async def agentc_control(replays: NamedDependency[SessionReplays]) -> Data[ReplayStatus]:
    """Apply a control to a session's replay."""
    body = await replays.body(SessionReplayControl)
    return Data(data=control_replay(replays.replay(body.replay_id), body))


agentc_event_router = Router(
    path="/api/v1/events",
    route_handlers=[agentc_events, agentc_stream, agentc_status, agentc_control],
    dependencies=REPLAY_SCOPE,
    tags=["events"],
)


@get(
    "/{session_id:str}/files",
    summary="List a session's interaction log files (Agent C)",
    description=f"{_AGENT_C}: one file, the session's whole interaction log.",
    responses=error_responses(404),
)
async def agentc_files(replays: NamedDependency[SessionReplays]) -> Data[list[str]]:
    """The names of the session's log files."""
    replays.live()
    return Data(data=[log_file_name(replays.id)])


@get(
    "/{session_id:str}/files/{name:str}",
    summary="Download a session's interaction log file (Agent C)",
    description="The file `…/files` names: `GET /api/v1/sessions/{id}/events.jsonl`.",
    media_type="application/x-ndjson",
    responses=error_responses(404, 503),
)
async def agentc_file(
    replays: NamedDependency[SessionReplays], name: FromPath[str]
) -> Response[bytes]:
    """One log file, as JSON Lines."""
    events = await session_events(replays)
    if name != log_file_name(replays.id):
        raise ParleyError(
            ErrorCode.FILE_NOT_FOUND,
            f"session {replays.id} has no log file {name[:64]!r}",
            {"file": name[:64], "files": [log_file_name(replays.id)]},
        )
    return jsonl_response(replays.id, events)


agentc_interaction_router = Router(
    path="/api/v1/interactions",
    route_handlers=[agentc_files, agentc_file],
    dependencies=REPLAY_SCOPE,
    tags=["sessions"],
)

replay_routes = [
    session_event_router,
    session_replay_router,
    agentc_event_router,
    agentc_interaction_router,
]
"""Every route of session events and replays (the app lists them)."""
