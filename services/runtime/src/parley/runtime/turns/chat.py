"""Starting chat turns. A turn holds one of its agent's slots for its whole life.

Concurrent messages on one session follow the policy: ``reject`` (409 ``SESSION_BUSY``),
``enqueue`` (wait for the running turn, bounded) or ``interrupt`` (cancel it, then run).
Which message starts is settled by the session's decider: ``turn.started`` is appended only
on the session exactly as the message saw it, idle (:class:`~parley.aggregates.session.StartTurn`).
"""

import asyncio
import contextlib
import time

from nats.aio.subscription import Subscription

from parley.aggregates.session import Moved, Open, Session, StartTurn, decide
from parley.contracts.errors import ErrorBody, ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.runtime import (
    CancelTurn,
    Chat,
    RuntimeReply,
    SessionSettings,
    session_stream,
)
from parley.eventstore.repository import Loaded
from parley.runtime.decisions import Envelope, execute
from parley.runtime.deps import Deps
from parley.runtime.domain import effective, running_agent
from parley.runtime.errors import RuntimeFault
from parley.runtime.sessions import load_session
from parley.runtime.turns.control import TurnControl, ctl_subject
from parley.runtime.turns.run import TurnEnd, run_turn, text_file, turn_started

__all__ = ["Turns"]


class Turns:
    """Runs chat turns and answers for the ones running in this process."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.control = TurnControl(deps)

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
        agent = (
            running_agent(deps.directory.get(session.agent_id), session.agent_id, cmd.namespace)
            if session.agent_id
            else None
        )
        settings = effective(agent, session.settings)
        if agent is not None and (reason := await deps.budgets.refusal(agent.id, settings.budget)):
            raise RuntimeFault(ErrorCode.BUDGET_EXCEEDED, reason)
        for ref in cmd.files:
            text_file(session, ref)
        policy = cmd.policy or session.settings.concurrency
        deadline = time.monotonic() + deps.settings.session_wait
        # Room first (a running turn may hold the agent's only slot), then a slot, then the
        # append, which settles a race with another message at the session's version.
        loaded = await self._room(cmd, loaded, policy, deadline)
        stack = contextlib.AsyncExitStack()
        try:
            if agent is not None:
                await stack.enter_async_context(
                    deps.capacity.slot(
                        agent.id,
                        settings.instances,
                        cmd.namespace,
                        prepare=lambda: deps.provider(settings.provider),
                    )
                )
            task, loaded, started_position = await self._launch(
                cmd, loaded, policy, deadline, stack
            )
        except BaseException:
            await stack.aclose()
            raise
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

    # --- starting --------------------------------------------------------------------

    async def _session(self, cmd: Chat, open_session: bool = False) -> Loaded[Session]:
        deps = self.deps
        if cmd.session_id is not None and open_session and cmd.agent_id is not None:
            if deps.sessions.cached(session_stream(cmd.session_id)) is None:
                running_agent(deps.directory.get(cmd.agent_id), cmd.agent_id, cmd.namespace)
                return _unopened(cmd.session_id, cmd)
        if cmd.session_id is not None:
            loaded = await load_session(deps, cmd.session_id, cmd.namespace, fresh=bool(cmd.files))
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

    async def _launch(
        self,
        cmd: Chat,
        loaded: Loaded[Session],
        policy: str,
        deadline: float,
        stack: contextlib.AsyncExitStack,
    ) -> tuple["asyncio.Task[TurnEnd | None]", Loaded[Session], int]:
        """Start the run and append its start at the same time.

        The run calls the model at once, but appends nothing and publishes no frame until
        ``turn.started`` is recorded (its gate), so the provider's latency overlaps the
        append. If the start is refused (another message won the session), the run is
        dropped without a trace and the turn starts again the careful way: make room by the
        policy, append, then run.
        """
        # Answer pings before the start is recorded: a runtime that sees the turn in the
        # session must find it alive, or it would end it as an orphan while it runs.
        ctl = await self.deps.nc.subscribe(ctl_subject(cmd.turn_id), cb=self.control.serve)
        stack.push_async_callback(_unsubscribe, ctl)
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._spawn(cmd, loaded, stack, gate)
        try:
            position = await self._append_start(cmd, loaded)
        except Moved:
            gate.cancel()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert loaded.state is not None
            loaded = await load_session(self.deps, loaded.state.id, cmd.namespace)
            loaded, position = await self._start(cmd, loaded, policy, deadline)
            gate = asyncio.get_running_loop().create_future()
            task = self._spawn(cmd, loaded, stack, gate)
        except BaseException:
            gate.cancel()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        gate.set_result(None)
        return task, loaded, position

    def _spawn(
        self,
        cmd: Chat,
        loaded: Loaded[Session],
        stack: contextlib.AsyncExitStack,
        gate: asyncio.Future[None],
    ) -> "asyncio.Task[TurnEnd | None]":
        assert loaded.state is not None
        running = self.control.running
        task = asyncio.create_task(
            self._run(cmd, loaded.state, stack, gate), name=f"turn-{cmd.turn_id}"
        )
        running[cmd.turn_id] = task
        task.add_done_callback(
            lambda done: (
                running.pop(cmd.turn_id, None) if running.get(cmd.turn_id) is done else None
            )
        )
        return task

    async def _room(
        self, cmd: Chat, loaded: Loaded[Session], policy: str, deadline: float
    ) -> Loaded[Session]:
        """The session once no turn runs in it, by the policy."""
        while (session := loaded.state) is not None and session.active is not None:
            await self._make_room(session, policy, deadline, cmd.namespace)
            loaded = await load_session(self.deps, session.id, cmd.namespace)
        return loaded

    async def _start(
        self, cmd: Chat, loaded: Loaded[Session], policy: str, deadline: float
    ) -> tuple[Loaded[Session], int]:
        """Append ``turn.started`` on the session as seen (making room again on a race)."""
        while True:
            loaded = await self._room(cmd, loaded, policy, deadline)
            try:
                return loaded, await self._append_start(cmd, loaded)
            except Moved:
                assert loaded.state is not None
                loaded = await load_session(self.deps, loaded.state.id, cmd.namespace)

    async def _append_start(self, cmd: Chat, loaded: Loaded[Session]) -> int:
        """Append ``turn.started`` (after ``session.created`` for a new conversation).

        Two single appends, not one atomic batch: a JetStream batch commit costs about ten
        times a single publish, and a new stream's first event can only race with itself.

        Raises:
            Moved: When the session is not as ``loaded`` shows it, or busy.
        """
        session = loaded.state
        assert session is not None
        stream = session_stream(session.id)
        envelope = Envelope(session.id, cmd.namespace, cmd.request_id, cmd.traceparent)
        version = loaded.version
        if version == 0:
            opened = Open(
                session_id=session.id, agent_id=session.agent_id, settings=session.settings
            )
            created = await execute(self.deps.sessions, stream, decide, opened, envelope, new=True)
            version = created.outcome.version
        started = turn_started(cmd, session)
        command = StartTurn(namespace=cmd.namespace, started=started, seen_version=version)
        executed = await execute(self.deps.sessions, stream, decide, command, envelope)
        return executed.outcome.position

    async def _make_room(self, session: Session, policy: str, deadline: float, ns: str) -> None:
        assert session.active is not None
        turn_id = session.active.turn_id
        if not await self.control.alive(turn_id):
            await self.control.finish_orphan(session, turn_id, ns)
            return
        if policy == "reject":
            raise RuntimeFault(
                ErrorCode.SESSION_BUSY,
                f"turn {turn_id} is still running in this conversation; send with policy"
                " `enqueue` or `interrupt`, or cancel it",
                {"turn_id": turn_id},
            )
        if policy == "interrupt":
            await self.control.cancel(turn_id, session.id, ns)
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeFault(
                ErrorCode.SESSION_BUSY,
                f"turn {turn_id} was still running after {self.deps.settings.session_wait:g}s",
                {"turn_id": turn_id},
            )
        local = self.control.running.get(turn_id)
        if local is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(local), remaining)
        else:
            await asyncio.sleep(min(0.05, remaining))

    # --- running ---------------------------------------------------------------------

    async def _run(
        self,
        cmd: Chat,
        session: Session,
        stack: contextlib.AsyncExitStack,
        gate: asyncio.Future[None],
    ) -> TurnEnd | None:
        """The turn; None when it was dropped before it started (the slot stays held)."""
        try:
            return await run_turn(self.deps, cmd, session, gate)
        finally:
            if not gate.cancelled():
                await stack.aclose()  # its control subscription, then its slot


async def _unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


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
