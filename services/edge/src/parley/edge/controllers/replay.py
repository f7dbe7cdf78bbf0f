"""Session replay: `/api/v1/sessions/{id}/replays` (create, list, status, stream, control,
delete); Agent C's spellings of it are in :mod:`.replay_agentc`.

A replay plays a session's recorded events back over Server-Sent Events at a speed factor
(:mod:`parley.edge.streams.replay`); it changes nothing, so whoever may read the session
(viewers too) may replay it. Replays live in the edge process that created them.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from typing import Any

import msgspec
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import ServerSentEvent
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.controllers.lookups import SessionScope
from parley.edge.controllers.session_events import EventSelection
from parley.edge.controllers.session_events import session_events
from parley.edge.http.auth import ACTION
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import created
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.edge.http.errors import not_found
from parley.edge.http.eventstream import EventStream
from parley.edge.http.paging import Paging
from parley.edge.streams.filters import parse_position
from parley.edge.streams.replay import ENDED
from parley.edge.streams.replay import Replay
from parley.edge.streams.replay import Replays
from parley.edge.streams.replay import ReplayStatus
from parley.identity.principal import Action

__all__ = [
    "MAX_EVENTS",
    "READS",
    "REPLAY_SCOPE",
    "REPLAY_SSE",
    "ReplayControl",
    "SessionReplayControl",
    "SessionReplays",
    "Speed",
    "StartReplay",
    "control_replay",
    "session_replay_router",
]

MAX_EVENTS = 100_000
"""Most events one replay holds; narrow a bigger session with `types`, `since`, `until`."""
PREFIX = "/api/v1/sessions"

Speed = Annotated[float, Meta(gt=0, le=1000, description="Times faster than recorded (0-1000].")]
Time = Annotated[datetime, Meta(tz=True, description="ISO-8601 time with a zone (`Z`).")]
READS: dict[str, Any] = {ACTION: Action.SUBSCRIBE}
"""Replays change nothing: viewers may create and control them."""


class StartReplay(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /sessions/{id}/replays`: what to replay, and how fast."""

    speed_factor: Speed = 1.0
    """Wall time runs this many times faster than the original (10 = ten times faster)."""
    real_time: bool = True
    """Keep the original spacing (scaled); false sends events as fast as they are read."""
    types: Annotated[list[str], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """Only events of these type globs (`turn.*`)."""
    since: Time | None = None
    """Only events at or after this time."""
    until: Time | None = None
    """Only events before this time."""
    paused: bool = False
    """Start paused (`play` starts it)."""


class ReplayAction(StrEnum):
    """What a control does."""

    PLAY = "play"
    RESUME = "resume"
    PAUSE = "pause"
    STOP = "stop"
    SEEK = "seek"
    SPEED = "speed"


class ReplayControl(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST …/replays/{replay_id}/control`."""

    action: ReplayAction
    """`play` (= `resume`), `pause`, `stop`, `seek` or `speed`."""
    position: Annotated[int, Meta(ge=0)] | Time | None = None
    """`seek` to this event (0-based index; the replay's `total` = the end) or, as Agent C
    sends it, to this time."""
    offset_s: Annotated[float, Meta(ge=0)] | None = None
    """`seek` to this many seconds of original time after the first event."""
    time: Time | None = None
    """`seek` to this original time."""
    speed_factor: Speed | None = None
    """New speed: required by `speed`, optional with `play`/`resume`."""


class SessionReplayControl(ReplayControl, kw_only=True, forbid_unknown_fields=True):
    """Body of Agent C's `POST /events/{session_id}/replay/control`."""

    replay_id: str | None = None
    """The replay to control; default: the session's newest that has not ended."""


def _seek(replay: Replay, control: ReplayControl) -> None:
    targets = [t for t in (control.position, control.offset_s, control.time) if t is not None]
    if len(targets) != 1:
        raise invalid("body.position", "seek takes exactly one of position, offset_s or time")
    if isinstance(control.position, int):
        replay.seek_index(control.position)
    elif isinstance(control.position, datetime):
        replay.seek_time(control.position)
    elif control.time is not None:
        replay.seek_time(control.time)
    elif control.offset_s is not None:
        replay.seek_offset(control.offset_s)


def _speed(replay: Replay, control: ReplayControl) -> None:
    if control.speed_factor is None:
        raise invalid("body.speed_factor", "speed needs a speed_factor")
    replay.set_speed(control.speed_factor)


_CONTROLS = {
    ReplayAction.PLAY: lambda r, c: r.play(c.speed_factor),
    ReplayAction.RESUME: lambda r, c: r.play(c.speed_factor),
    ReplayAction.PAUSE: lambda r, c: r.pause(),
    ReplayAction.STOP: lambda r, c: r.stop(),
    ReplayAction.SEEK: _seek,
    ReplayAction.SPEED: _speed,
}


def control_replay(replay: Replay, control: ReplayControl) -> ReplayStatus:
    """Apply ``control`` to ``replay``; its status after.

    Raises:
        ParleyError: ``422`` for fields the action does not take, ``409`` for an action the
            replay's state refuses.
    """
    action = control.action
    if action is not ReplayAction.SEEK and (
        control.position is not None or control.offset_s is not None or control.time is not None
    ):
        raise invalid("body.action", "position, offset_s and time go with seek")
    speeds = (ReplayAction.PLAY, ReplayAction.RESUME, ReplayAction.SPEED)
    if control.speed_factor is not None and action not in speeds:
        raise invalid("body.speed_factor", "speed_factor goes with play, resume or speed")
    _CONTROLS[action](replay, control)
    return replay.status()


class SessionReplays(SessionScope):
    """What the replay routes of the session `{session_id}` share: the session's replays."""

    @property
    def replays(self) -> Replays:
        """This edge process's replays."""
        state = self.request.app.state
        found = state.get("replays")
        if not isinstance(found, Replays):
            found = state["replays"] = Replays()
        return found

    async def start(self, selection: EventSelection, *, speed: float, real_time: bool) -> Replay:
        """A new replay of the session's events that ``selection`` keeps."""
        events = selection.select(await session_events(self))
        if len(events) > MAX_EVENTS:
            raise ParleyError(
                ErrorCode.VALIDATION_ERROR,
                f"the session has {len(events)} events; a replay holds at most {MAX_EVENTS}:"
                " narrow it with types, since or until",
                {"errors": [{"field": "body.types", "message": "too many events"}]},
            )
        replay = Replay(
            self.ns, self.id, events, speed_factor=speed, real_time=real_time, types=selection.types
        )
        replay.stream_url = f"{PREFIX}/{self.id}/replays/{replay.id}/stream"
        return self.replays.add(replay)

    def replay(self, replay_id: str | None = None) -> Replay:
        """The session's replay ``replay_id`` (default: its newest that has not ended), or
        ``404 NOT_FOUND``."""
        self.live()
        replays = self.replays
        if replay_id is None:
            going = [r for r in replays.of(self.ns, self.id) if r.state not in ENDED]
            if going:
                return going[-1]
        else:
            found = replays.get(self.ns, self.id, replay_id)
            if found is not None:
                return found
        raise not_found(ErrorCode.NOT_FOUND, "replay", "replay_id", replay_id or "active", self.ns)

    def stream(self, replay: Replay) -> ServerSentEvent:
        """``replay``'s events over SSE; a ``Last-Event-ID`` goes on after that event."""
        resume = parse_position(self.request.headers.get("last-event-id"), "Last-Event-ID")
        listener = replay.attach()
        if resume is not None:
            replay.seek_after(resume)
        return EventStream(
            replay.messages(listener),
            headers={"Parley-Replay-Id": replay.id},
            background=BackgroundTask(_hang_up, replay, listener),
        )


async def _hang_up(replay: Replay, listener: int) -> None:
    """The response ended: its listener no longer listens (whether or not its stream ran)."""
    replay.detach(listener)


REPLAY_SSE: dict[str, Any] = {"opt": READS, "media_type": "text/event-stream"}
"""What an SSE route declares: viewers may follow it; its answer is an event stream."""


_REPLAY = "/{session_id:str}/replays/{replay_id:str}"


@post(
    "/{session_id:str}/replays",
    status_code=201,
    summary="Replay a session",
    description="Plays the session's recorded events back over SSE (`stream_url`) at"
    " `speed_factor`, with their original spacing scaled (`real_time`). The replay lives in"
    " this edge process; its clock runs while a client listens.",
    opt={**READS, "body": StartReplay, "body_optional": True},
    responses=error_responses(400, 403, 404, 413, 415, 422, 503),
)
async def create_replay(replays: NamedDependency[SessionReplays]) -> Response[Data[ReplayStatus]]:
    """Create a replay; answers its status, `Location` its URL."""
    body = await replays.body(StartReplay, optional=True)
    selection = EventSelection(body.types, body.since, body.until, until_field="body.until")
    replay = await replays.start(selection, speed=body.speed_factor, real_time=body.real_time)
    if body.paused:
        replay.pause()
    return created(replay.status(), f"{PREFIX}/{replays.id}/replays/{replay.id}")


@get(
    "/{session_id:str}/replays",
    summary="List a session's replays",
    description="The replays this edge process holds for the session, oldest first.",
    responses=error_responses(400, 404, 422),
)
async def list_replays(
    replays: NamedDependency[SessionReplays], paging: NamedDependency[Paging]
) -> Page[ReplayStatus]:
    """A page of the session's replays."""
    replays.live()
    found = [r.status() for r in replays.replays.of(replays.ns, replays.id)]
    return paging.page(found, lambda s: f"{s.created_at.isoformat()}\x00{s.id}")


@get(_REPLAY, summary="Read a replay's status", responses=error_responses(404))
async def replay_status(
    replays: NamedDependency[SessionReplays], replay_id: FromPath[str]
) -> Data[ReplayStatus]:
    """State, position, progress and speed of a replay."""
    return Data(data=replays.replay(replay_id).status())


@get(
    f"{_REPLAY}/stream",
    summary="Stream a replay (Server-Sent Events)",
    description="Each message: `id:` the event's position, `event:` its type, `data:` its"
    " envelope, sent when the replay's clock reaches it; last a `replay.finished` or"
    " `replay.stopped` message with the status. One listener at a time (`409` for a second).",
    responses=error_responses(400, 404, 409),
    **REPLAY_SSE,
)
async def stream_replay(
    replays: NamedDependency[SessionReplays], replay_id: FromPath[str]
) -> ServerSentEvent:
    """The replay's events as they fall due."""
    return replays.stream(replays.replay(replay_id))


@post(
    f"{_REPLAY}/control",
    status_code=200,
    summary="Control a replay",
    description="`play`/`resume`, `pause`, `stop`, `seek` (one of `position` = an event index,"
    " `offset_s`, `time`) or `speed` (`speed_factor`).",
    opt={**READS, "body": ReplayControl},
    responses=error_responses(400, 404, 409, 413, 415, 422),
)
async def control(
    replays: NamedDependency[SessionReplays], replay_id: FromPath[str]
) -> Data[ReplayStatus]:
    """Apply a control; answers the status after it."""
    replay = replays.replay(replay_id)
    return Data(data=control_replay(replay, await replays.body(ReplayControl)))


@delete(
    _REPLAY,
    status_code=204,
    summary="Stop and forget a replay",
    opt=READS,
    responses=error_responses(404),
)
async def delete_replay(replays: NamedDependency[SessionReplays], replay_id: FromPath[str]) -> None:
    """Stop the replay (its stream ends) and forget it."""
    replays.replays.remove(replays.replay(replay_id))


REPLAY_SCOPE = {"replays": Provide(SessionReplays, sync_to_thread=False)}

session_replay_router = Router(
    path=PREFIX,
    route_handlers=[
        create_replay,
        list_replays,
        replay_status,
        stream_replay,
        control,
        delete_replay,
    ],
    dependencies=REPLAY_SCOPE,
    tags=["sessions"],
)
