"""Control of running turns, wherever they run: ping, cancel, and ending orphans.

A turn's runtime answers on ``parley.ctl.turn.<turn id>`` while the turn runs (``ping``,
``cancel``), so any runtime can tell a live turn from one whose process died (no
responders) and cancel it wherever it runs.
"""

import asyncio
import contextlib

import nats.errors
from nats.aio.msg import Msg

from parley.aggregates.session import EndOrphanTurn
from parley.aggregates.session import Session
from parley.aggregates.session import decide
from parley.contracts import subjects
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import session_stream
from parley.runtime.decisions import Envelope
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.errors import RuntimeFault
from parley.runtime.sessions import load_session
from parley.runtime.turns.run import TurnEnd

__all__ = ["TurnControl", "ctl_subject"]

_PING_TIMEOUT_S = 0.5


def ctl_subject(turn_id: str) -> str:
    """Control subject of a running turn (answered only by the runtime running it)."""
    return subjects.control("turn", turn_id)


class TurnControl:
    """The turns running in this process, and control of any turn."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.running: dict[str, asyncio.Task[TurnEnd | None]] = {}

    async def alive(self, turn_id: str) -> bool:
        """Whether a runtime still runs the turn (this one, or one that answers the ping)."""
        if turn_id in self.running:
            return True
        try:
            await self.deps.nc.request(ctl_subject(turn_id), b"ping", timeout=_PING_TIMEOUT_S)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return True  # the owner may be busy; do not take its turn away
        return True

    async def finish_orphan(self, session: Session, turn_id: str, namespace: str) -> int:
        """Record the end of a turn whose runtime died; the position of that end, or 0.

        Decided on the session as it was seen with the turn running: if the turn ended
        meanwhile (its runtime was only between its last event and its unsubscribe), nothing
        is recorded.
        """
        executed = await execute(
            self.deps.sessions,
            session_stream(session.id),
            decide,
            EndOrphanTurn(turn_id=turn_id, seen_version=session.version),
            Envelope(session.id, namespace),
        )
        return executed.outcome.position if executed.outcome.appended else 0

    async def cancel(self, turn_id: str, session_id: str | None, namespace: str) -> int:
        """Cancel a running turn wherever it runs; the position of its end."""
        try:
            msg = await self.deps.nc.request(ctl_subject(turn_id), b"cancel", timeout=10.0)
        except nats.errors.NoRespondersError:
            if session_id is None:
                raise RuntimeFault(
                    ErrorCode.NO_ACTIVE_TURN, f"turn {turn_id!r} is not running"
                ) from None
            session = (await load_session(self.deps, session_id, namespace)).state
            assert session is not None
            if session.active is None or session.active.turn_id != turn_id:
                raise RuntimeFault(
                    ErrorCode.NO_ACTIVE_TURN, f"turn {turn_id!r} is not running"
                ) from None
            return await self.finish_orphan(session, turn_id, namespace)
        return int(msg.data or b"0")

    async def serve(self, msg: Msg) -> None:
        """Answer a ping or a cancel of a turn running here (a cancel: once it ended)."""
        turn_id = msg.subject.rsplit(".", 1)[-1]
        task = self.running.get(turn_id)
        position = 0
        if msg.data == b"cancel" and task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                end = await asyncio.shield(task)
                position = end.position if end is not None else 0
        await msg.respond(str(position).encode())
