"""Session replay: a session's recorded events played back at a speed factor.

A :class:`Replay` holds the session's events as they were when it was created (a snapshot,
optionally filtered), a cursor (the next event to send) and a clock in the session's own
time: seconds after its first event. While a replay is ``playing`` and a client listens to
its stream, the clock runs at ``speed_factor`` times wall time and each event is sent when
the clock reaches the offset it was recorded at, so the original spacing comes out scaled.
``pause`` freezes the clock, ``seek`` moves cursor and clock together, ``stop`` ends the
replay. Without ``real_time`` the clock jumps to each event: they go out as fast as the
client reads them.

Replays change nothing: they live in the edge process that created them (:class:`Replays`),
not in the event store, and vanish when that process restarts or after they sit idle. Behind
several edge processes, a replay's controls must reach the process that created it.
"""

import asyncio
import bisect
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

import msgspec
from litestar.response.sse import ServerSentEventMessage

from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError
from parley.edge.streams.filters import encode_event

__all__ = ["ENDED", "KEEPALIVE_S", "Replay", "ReplayState", "ReplayStatus", "Replays"]

KEEPALIVE_S = 15.0
"""Seconds of silence after which a replay stream sends a `: keep-alive` comment."""


class ReplayState(StrEnum):
    """Where a replay is."""

    PLAYING = "playing"
    """Sending events while a client listens (the clock stands still while none does)."""
    PAUSED = "paused"
    """Holding its place; `play` (or `resume`) goes on from it."""
    FINISHED = "finished"
    """Every event was sent; `seek` rewinds it (paused)."""
    STOPPED = "stopped"
    """Ended for good."""


ENDED = frozenset({ReplayState.FINISHED, ReplayState.STOPPED})
"""The states a replay does not leave by itself (a finished one may be rewound)."""


class ReplayStatus(msgspec.Struct, kw_only=True):
    """A replay: what it plays, where it is and how fast."""

    id: str
    """The replay's id (controls and the stream go to it)."""
    session_id: str
    """The session replayed."""
    state: ReplayState
    """`playing`, `paused`, `finished` or `stopped`."""
    listening: bool
    """Whether a client is connected to the replay's stream (the clock runs only then)."""
    position: int
    """Events sent so far: the index of the next event to send (0 = the start)."""
    total: int
    """Events the replay holds."""
    progress: float
    """`position / total` (1.0 for an empty replay)."""
    speed_factor: float
    """Wall time runs this many times faster than the original."""
    real_time: bool
    """Whether events keep their original spacing (scaled by `speed_factor`)."""
    offset_s: float
    """The replay's clock: seconds of original time after the first event."""
    duration_s: float
    """Seconds of original time from the first event to the last."""
    current_time: datetime | None
    """The original time the clock shows (null for an empty replay)."""
    last_position: int | None
    """Global position of the last event sent (the stream's `Last-Event-ID`)."""
    types: list[str]
    """The type patterns the replay was made with (empty: every event)."""
    created_at: datetime
    """When the replay was created."""
    stream_url: str
    """The replay's event stream (Server-Sent Events)."""


class Replay:
    """One replay of one session's events (see the module)."""

    def __init__(
        self,
        namespace: str,
        session_id: str,
        events: Sequence[Event],
        *,
        speed_factor: float,
        real_time: bool,
        types: Sequence[str] = (),
        stream_url: str = "",
    ) -> None:
        self.id, self.namespace, self.session_id = str(uuid.uuid4()), namespace, session_id
        self.events, self.types, self.stream_url = list(events), list(types), stream_url
        self.speed_factor, self.real_time = speed_factor, real_time
        self.state = ReplayState.PLAYING if self.events else ReplayState.FINISHED
        self.cursor = 0
        self._listener: int | None = None
        """The token of the client listening, if one is."""
        self._listeners = 0
        self.created_at, self.touched = utcnow(), time.monotonic()
        self.changed = asyncio.Event()
        """Set by every control: a waiting stream looks again."""
        start = self.events[0].time if self.events else None
        self._start = start
        self._offsets = [(e.time - start).total_seconds() for e in self.events] if start else []
        self._offset = 0.0
        self._since: float | None = None
        """When the clock last started running (None: it stands still at ``_offset``)."""

    @property
    def listening(self) -> bool:
        """Whether a client listens to the replay's stream."""
        return self._listener is not None

    @property
    def duration(self) -> float:
        """Seconds of original time the replay spans."""
        return self._offsets[-1] if self._offsets else 0.0

    def clock(self) -> float:
        """The replay's clock: original seconds after the first event."""
        if self._since is None:
            return self._offset
        return self._offset + (time.monotonic() - self._since) * self.speed_factor

    def status(self) -> ReplayStatus:
        """Where the replay is, now."""
        total, offset = len(self.events), min(self.clock(), self.duration)
        return ReplayStatus(
            id=self.id,
            session_id=self.session_id,
            state=self.state,
            listening=self.listening,
            position=self.cursor,
            total=total,
            progress=round(self.cursor / total, 6) if total else 1.0,
            speed_factor=self.speed_factor,
            real_time=self.real_time,
            offset_s=round(offset, 6),
            duration_s=round(self.duration, 6),
            current_time=self._start + timedelta(seconds=offset) if self._start else None,
            last_position=self.events[self.cursor - 1].position if self.cursor else None,
            types=self.types,
            created_at=self.created_at,
            stream_url=self.stream_url,
        )

    # Controls. Each freezes the clock, changes the replay, then lets the clock run again if
    # it should, and wakes the stream.

    def _change(
        self,
        state: ReplayState | None = None,
        *,
        offset: float | None = None,
        speed_factor: float | None = None,
    ) -> None:
        self._offset, self._since = (self.clock() if offset is None else offset), None
        if state is not None:
            self.state = state
        if speed_factor is not None:
            self.speed_factor = speed_factor
        if self.cursor >= len(self.events) and self.state is ReplayState.PLAYING:
            self.state = ReplayState.FINISHED
        if self.state is ReplayState.PLAYING and self.listening:
            self._since = time.monotonic()
        self.touched = time.monotonic()
        self.changed.set()

    def _refuse_when(self, *states: ReplayState, action: str) -> None:
        if self.state in states:
            hint = "; seek to rewind it first" if self.state is ReplayState.FINISHED else ""
            raise ApiError(
                ErrorCode.INVALID_STATE_TRANSITION,
                f"replay {self.id} is {self.state}: it cannot {action}{hint}",
                {"state": self.state, "action": action},
            )

    def play(self, speed_factor: float | None = None) -> None:
        """Play (or go on playing) from where the replay is, at a new speed if given."""
        self._refuse_when(*ENDED, action="play")
        self._change(ReplayState.PLAYING, speed_factor=speed_factor)

    def pause(self) -> None:
        """Hold the replay where it is."""
        self._refuse_when(*ENDED, action="pause")
        self._change(ReplayState.PAUSED)

    def set_speed(self, speed_factor: float) -> None:
        """Change the speed; the clock goes on from where it is."""
        self._refuse_when(ReplayState.STOPPED, action="change speed")
        self._change(speed_factor=speed_factor)

    def stop(self) -> None:
        """End the replay for good (its stream closes)."""
        self._change(ReplayState.STOPPED)

    def seek_index(self, index: int) -> None:
        """Make event ``index`` (0-based; ``total`` = the end) the next one to send."""
        self._refuse_when(ReplayState.STOPPED, action="seek")
        if not 0 <= index <= len(self.events):
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                f"position {index} is outside the replay (0 to {len(self.events)})",
                {"errors": [{"field": "body.position", "message": "out of range"}]},
            )
        self.cursor = index
        offset = self._offsets[index] if index < len(self.events) else self.duration
        self._change(self._after_seek(), offset=offset)

    def seek_offset(self, seconds: float) -> None:
        """Move the clock to ``seconds`` of original time after the first event (clamped):
        the next event is the first recorded at or after it."""
        self._refuse_when(ReplayState.STOPPED, action="seek")
        offset = min(max(seconds, 0.0), self.duration)
        self.cursor = bisect.bisect_left(self._offsets, offset - 1e-9)
        self._change(self._after_seek(), offset=offset)

    def seek_time(self, when: datetime) -> None:
        """Move the clock to the original time ``when`` (clamped to the replay's span)."""
        self.seek_offset((when - self._start).total_seconds() if self._start else 0.0)

    def seek_after(self, position: int) -> None:
        """Go on after the event at global ``position`` (a reconnect's ``Last-Event-ID``);
        a stopped replay stays where it ended."""
        if self.state is ReplayState.STOPPED:
            return
        sent = [i for i, e in enumerate(self.events) if e.position <= position]
        if sent:
            self.seek_index(sent[-1] + 1)

    def _after_seek(self) -> ReplayState:
        finished = self.state is ReplayState.FINISHED
        return ReplayState.PAUSED if finished else self.state

    # The stream.

    def attach(self) -> int:
        """A client starts listening; its token (for :meth:`messages` and :meth:`detach`).

        Raises:
            ApiError: ``INVALID_STATE_TRANSITION`` when another client already listens.
        """
        if self.listening:
            raise ApiError(
                ErrorCode.INVALID_STATE_TRANSITION,
                f"replay {self.id} already has a listener; create another replay to watch twice",
                {"replay_id": self.id},
            )
        self._listeners += 1
        self._listener = self._listeners
        self._change()
        return self._listener

    def detach(self, listener: int) -> None:
        """The client ``listener`` went away: the clock stands still until one listens again.
        A token that no longer listens changes nothing."""
        if self._listener == listener:
            self._listener = None
            self._change()

    async def messages(self, listener: int) -> AsyncIterator[ServerSentEventMessage]:
        """The stream of the attached client ``listener``: events as they fall due, then the
        end."""
        try:
            while True:
                self.changed.clear()
                if self.state in ENDED:
                    yield _end_message(self)
                    return
                wait = self._due_in()
                if wait == 0.0:
                    yield _event_message(self._take())
                    continue
                period = KEEPALIVE_S if wait is None else min(wait, KEEPALIVE_S)
                try:
                    async with asyncio.timeout(period):
                        await self.changed.wait()
                except TimeoutError:
                    if period >= KEEPALIVE_S:
                        yield ServerSentEventMessage(data=None, comment="keep-alive")
        finally:
            self.detach(listener)

    def _due_in(self) -> float | None:
        """Seconds until the next event falls due (0.0: now); None while paused."""
        if self.state is not ReplayState.PLAYING:
            return None
        if not self.real_time:
            return 0.0
        ahead = self._offsets[self.cursor] - self.clock()
        return 0.0 if ahead <= 0 else ahead / self.speed_factor

    def _take(self) -> Event:
        event = self.events[self.cursor]
        self.cursor += 1
        offset = max(self.clock(), self._offsets[self.cursor - 1])
        self._change(offset=offset if not self.real_time else None)
        return event


def _event_message(event: Event) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=encode_event(event).decode(), event=event.type, id=event.position
    )


def _end_message(replay: Replay) -> ServerSentEventMessage:
    data = msgspec.json.encode(replay.status()).decode()
    return ServerSentEventMessage(data=data, event=f"replay.{replay.state}")


class Replays:
    """The replays of this edge process, by namespace and session.

    Bounded: at most ``per_session`` per session (the oldest ended or unheard one makes
    room); one nobody listened to or controlled for ``idle_s`` seconds is dropped.
    """

    def __init__(self, per_session: int = 16, idle_s: float = 900.0) -> None:
        self._per_session, self._idle_s = per_session, idle_s
        self._by_session: dict[tuple[str, str], dict[str, Replay]] = {}

    def add(self, replay: Replay) -> Replay:
        """Keep ``replay``.

        Raises:
            ApiError: ``QUOTA_EXCEEDED`` when the session has ``per_session`` replays with
                listeners.
        """
        found = self._session(replay.namespace, replay.session_id)
        if len(found) >= self._per_session:
            spare = next((r for r in found.values() if r.state in ENDED), None) or next(
                (r for r in found.values() if not r.listening), None
            )
            if spare is None:
                raise ApiError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"session {replay.session_id} has {len(found)} replays with listeners;"
                    " stop one first",
                    {"limit": self._per_session},
                )
            spare.stop()
            del found[spare.id]
        found[replay.id] = replay
        return replay

    def of(self, namespace: str, session_id: str) -> list[Replay]:
        """The session's replays, oldest first."""
        return list(self._session(namespace, session_id).values())

    def get(self, namespace: str, session_id: str, replay_id: str) -> Replay | None:
        """The replay ``replay_id`` of that session, if this process holds it."""
        return self._session(namespace, session_id).get(replay_id)

    def remove(self, replay: Replay) -> None:
        """Stop ``replay`` and forget it."""
        replay.stop()
        self._session(replay.namespace, replay.session_id).pop(replay.id, None)

    def _session(self, namespace: str, session_id: str) -> dict[str, Replay]:
        self._sweep()
        return self._by_session.setdefault((namespace, session_id), {})

    def _sweep(self) -> None:
        cutoff = time.monotonic() - self._idle_s
        for key, replays in list(self._by_session.items()):
            for replay in [r for r in replays.values() if not r.listening and r.touched < cutoff]:
                replay.stop()
                del replays[replay.id]
            if not replays:
                del self._by_session[key]
