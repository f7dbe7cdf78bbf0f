"""Chat commands: a message starts a turn (and opens its conversation), a cancel stops one.

The turn starts by its session's concurrency policy (:mod:`.start`), runs and records its
end (:mod:`.run`); a streamed turn is answered at once, any other when it ends.
"""

import asyncio

from parley.aggregates.session import Session
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.runtime import CancelTurn
from parley.contracts.runtime import Chat
from parley.contracts.runtime import RuntimeReply
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import session_stream
from parley.eventstore.repository import Loaded
from parley.runtime.deps import Deps
from parley.runtime.domain import effective
from parley.runtime.domain import running_agent
from parley.runtime.errors import RuntimeFault
from parley.runtime.sessions import load_session
from parley.runtime.turns.control import TurnControl
from parley.runtime.turns.run import TurnEnd
from parley.runtime.turns.run import text_file
from parley.runtime.turns.start import Starter

__all__ = ["Turns"]


class Turns:
    """Runs chat turns and answers for the ones running in this process."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.control = TurnControl(deps)
        self.starter = Starter(deps, self.control)

    async def chat(self, cmd: Chat, *, open_session: bool = False) -> RuntimeReply:
        """Start a turn; reply when it ends, or at once for a streamed turn.

        With ``open_session``, a ``session_id`` this process does not know is opened by the
        turn's first append (a conversation the inbox derives an id for); if it exists after
        all, that append is refused and the turn starts again on the stored session.
        """
        deps = self.deps
        if cmd.min_position:
            await deps.directory.wait_for(cmd.min_position, 2.0)
        loaded = await self._session(cmd, open_session)
        session = loaded.state
        assert session is not None
        routed = (
            deps.directory.route(
                running_agent(
                    deps.directory.get(session.agent_id), session.agent_id, cmd.namespace
                ),
                session.id,
            )
            if session.agent_id
            else None
        )
        agent = routed.agent if routed is not None else None
        settings = effective(agent, session.settings)
        await deps.spend.check(cmd.namespace)  # QUOTA_EXCEEDED before any model call
        if agent is not None and (reason := await deps.budgets.refusal(agent.id, settings.budget)):
            raise RuntimeFault(ErrorCode.BUDGET_EXCEEDED, reason)
        for ref in cmd.files:
            text_file(session, ref)
        task, loaded, started_position = await self.starter.start(cmd, loaded, routed, settings)
        session = loaded.state
        assert session is not None
        if cmd.stream:
            return RuntimeReply(
                ok=True,
                session_id=session.id,
                turn_id=cmd.turn_id,
                version=loaded.version,
                position=started_position,
            )
        end = await asyncio.shield(task)
        assert end is not None  # a started turn always ends with a result
        return _reply(cmd, session, end)

    async def cancel(self, cmd: CancelTurn) -> RuntimeReply:
        """Cancel a session's running turn, wherever it runs."""
        turn_id = cmd.turn_id
        session_id = cmd.session_id
        if turn_id is None:
            if session_id is None:
                raise RuntimeFault(
                    ErrorCode.VALIDATION_ERROR, "name the conversation_id or the turn_id"
                )
            session = (await load_session(self.deps, session_id, cmd.namespace)).state
            assert session is not None
            if session.active is None:
                raise RuntimeFault(
                    ErrorCode.NO_ACTIVE_TURN, f"session {session_id!r} has no running turn"
                )
            turn_id = session.active.turn_id
        position = await self.control.cancel(turn_id, session_id, cmd.namespace)
        return RuntimeReply(ok=True, session_id=session_id, turn_id=turn_id, position=position)

    async def _session(self, cmd: Chat, open_session: bool = False) -> Loaded[Session]:
        deps = self.deps
        if cmd.session_id is not None and open_session and cmd.agent_id is not None:
            if deps.sessions.cached(session_stream(cmd.session_id)) is None:
                running_agent(deps.directory.get(cmd.agent_id), cmd.agent_id, cmd.namespace)
                return _unopened(cmd.session_id, cmd)
        if cmd.session_id is not None:
            try:
                loaded = await load_session(
                    deps, cmd.session_id, cmd.namespace, fresh=bool(cmd.files)
                )
            except RuntimeFault as fault:
                if cmd.agent_id is None or not await self._unrecorded(cmd.session_id, fault):
                    raise
                # A conversation id the client chose: its first turn opens it.
                running_agent(deps.directory.get(cmd.agent_id), cmd.agent_id, cmd.namespace)
                return _unopened(cmd.session_id, cmd)
            session = loaded.state
            assert session is not None
            if cmd.agent_id is not None and session.agent_id != cmd.agent_id:
                raise RuntimeFault(
                    ErrorCode.SESSION_NOT_FOUND,
                    f"agent {cmd.agent_id!r} has no conversation {cmd.session_id!r}",
                )
            return loaded
        if cmd.agent_id is None:
            raise RuntimeFault(ErrorCode.VALIDATION_ERROR, "name an agent or a session")
        running_agent(deps.directory.get(cmd.agent_id), cmd.agent_id, cmd.namespace)
        # A new conversation: appended together with its first turn's start (version 0).
        return _unopened(new_id(), cmd)

    async def _unrecorded(self, session_id: str, fault: RuntimeFault) -> bool:
        """Whether ``fault`` says ``session_id`` was never recorded (not deleted, nor a
        conversation of another namespace: those stay not found)."""
        if fault.code is not ErrorCode.SESSION_NOT_FOUND:
            return False
        return (await self.deps.sessions.load(session_stream(session_id))).state is None


def _unopened(session_id: str, cmd: Chat) -> Loaded[Session]:
    """A conversation not recorded yet: its first turn opens it."""
    fresh = Session(
        id=session_id, namespace=cmd.namespace, agent_id=cmd.agent_id, settings=SessionSettings()
    )
    return Loaded(fresh, 0, 0)


def _reply(cmd: Chat, session: Session, end: TurnEnd) -> RuntimeReply:
    result = end.result
    if end.error is not None and result.outcome in ("failed", "interrupted"):
        error = end.error
        details = dict(error.details) if isinstance(error.details, dict) else {}
        details.update(
            turn_id=cmd.turn_id,
            conversation_id=session.id,
            outcome=result.outcome,
            partial_response=result.response,
        )
        return RuntimeReply(
            ok=False,
            error=ErrorBody(code=error.code, message=error.message, details=details),
        )
    return RuntimeReply(
        ok=True, session_id=session.id, turn_id=cmd.turn_id, chat=result, position=end.position
    )
