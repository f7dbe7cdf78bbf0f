"""Starting a chat turn: room by the session's policy, one of its agent's slots, its start.

Concurrent messages on one session follow the policy: ``reject`` (409 ``SESSION_BUSY``),
``enqueue`` (wait for the running turn, bounded) or ``interrupt`` (cancel it, then run).
Which message starts is settled by the session's decider: ``turn.started`` is appended only
on the session exactly as the message saw it, idle (:class:`~parley.aggregates.session.StartTurn`).
A turn holds its slot for its whole life.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass

from nats.aio.subscription import Subscription

from parley.aggregates.session import Moved
from parley.aggregates.session import Session
from parley.aggregates.session import StartTurn
from parley.aggregates.session import decide
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import Chat
from parley.contracts.runtime import session_stream
from parley.eventstore.repository import Loaded
from parley.runtime.adapters.rollouts import Routed
from parley.runtime.decisions import Envelope
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.domain import Effective
from parley.runtime.errors import RuntimeFault
from parley.runtime.sessions import load_session
from parley.runtime.turns.control import TurnControl
from parley.runtime.turns.control import ctl_subject
from parley.runtime.turns.run import TurnEnd
from parley.runtime.turns.run import run_turn
from parley.runtime.turns.run import turn_started

__all__ = ["Starter"]

Started = tuple["asyncio.Task[TurnEnd | None]", Loaded[Session], int]
"""The running turn, the session it started on, and the position of its start."""


@dataclass(frozen=True)
class _Turn:
    """A turn being started: its message, the agent's definition it runs on (none for a
    session without an agent), and how it waits for room in its session."""

    cmd: Chat
    routed: Routed | None
    policy: str
    deadline: float


class Starter:
    """Starts turns in this process."""

    def __init__(self, deps: Deps, control: TurnControl) -> None:
        self.deps, self.control = deps, control
        self._releasing: set[asyncio.Task[None]] = set()

    async def start(
        self, cmd: Chat, loaded: Loaded[Session], routed: Routed | None, settings: Effective
    ) -> Started:
        """Make room, take a slot, and start the turn (its run and its recorded start) on
        the agent's definition ``routed`` chose (none for a session without an agent)."""
        deps = self.deps
        agent = routed.agent if routed is not None else None
        session = loaded.state
        assert session is not None
        policy = cmd.policy or session.settings.concurrency
        turn = _Turn(cmd, routed, policy, time.monotonic() + deps.settings.session_wait)
        # Room first (a running turn may hold the agent's only slot), then a slot, then the
        # append, which settles a race with another message at the session's version.
        loaded = await self._room(turn, loaded)
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
            return await self._launch(turn, loaded, stack)
        except BaseException:
            await stack.aclose()
            raise

    async def _launch(
        self, turn: _Turn, loaded: Loaded[Session], stack: contextlib.AsyncExitStack
    ) -> Started:
        """Start the run and append its start at the same time.

        The run calls the model at once, but appends nothing and publishes no frame until
        ``turn.started`` is recorded (its gate), so the provider's latency overlaps the
        append. If the start is refused (another message won the session), the run is
        dropped without a trace and the turn starts again the careful way: make room by the
        policy, append, then run.
        """
        # Answer pings before the start is recorded: a runtime that sees the turn in the
        # session must find it alive, or it would end it as an orphan while it runs.
        cmd = turn.cmd
        ctl = await self.deps.nc.subscribe(ctl_subject(cmd.turn_id), cb=self.control.serve)
        stack.push_async_callback(_unsubscribe, ctl)
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._spawn(turn, loaded, stack, gate)
        try:
            position = await self._append_start(turn, loaded)
        except Moved:
            gate.cancel()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert loaded.state is not None
            loaded = await load_session(self.deps, loaded.state.id, cmd.namespace)
            assert loaded.state is not None
            if cmd.agent_id is not None and loaded.state.agent_id != cmd.agent_id:
                # a conversation id chosen by two clients at once, for two agents
                message = f"agent {cmd.agent_id!r} has no conversation {loaded.state.id!r}"
                raise RuntimeFault(ErrorCode.SESSION_NOT_FOUND, message) from None
            loaded, position = await self._start(turn, loaded)
            gate = asyncio.get_running_loop().create_future()
            task = self._spawn(turn, loaded, stack, gate)
        except BaseException:
            gate.cancel()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        gate.set_result(None)
        return task, loaded, position

    def _spawn(
        self,
        turn: _Turn,
        loaded: Loaded[Session],
        stack: contextlib.AsyncExitStack,
        gate: asyncio.Future[None],
    ) -> "asyncio.Task[TurnEnd | None]":
        assert loaded.state is not None
        running, cmd = self.control.running, turn.cmd
        task = asyncio.create_task(
            self._run(turn, loaded.state, stack, gate), name=f"turn-{cmd.turn_id}"
        )
        running[cmd.turn_id] = task
        task.add_done_callback(
            lambda done: (
                running.pop(cmd.turn_id, None) if running.get(cmd.turn_id) is done else None
            )
        )
        return task

    async def _room(self, turn: _Turn, loaded: Loaded[Session]) -> Loaded[Session]:
        """The session once no turn runs in it, by the policy."""
        namespace = turn.cmd.namespace
        while (session := loaded.state) is not None and session.active is not None:
            await self._make_room(session, turn.policy, turn.deadline, namespace)
            loaded = await load_session(self.deps, session.id, namespace)
        return loaded

    async def _start(self, turn: _Turn, loaded: Loaded[Session]) -> tuple[Loaded[Session], int]:
        """Append ``turn.started`` on the session as seen (making room again on a race)."""
        while True:
            loaded = await self._room(turn, loaded)
            try:
                return loaded, await self._append_start(turn, loaded)
            except Moved:
                assert loaded.state is not None
                loaded = await load_session(self.deps, loaded.state.id, turn.cmd.namespace)

    async def _append_start(self, turn: _Turn, loaded: Loaded[Session]) -> int:
        """Append ``turn.started``; for a new conversation it is the stream's first event
        and opens it (``TurnStarted.opens``: one append, where ``session.created`` then the
        start took two, one after the other).

        Raises:
            Moved: When the session is not as ``loaded`` shows it, or busy (or, for a new
                conversation, when it exists after all).
        """
        session, cmd = loaded.state, turn.cmd
        assert session is not None
        stream = session_stream(session.id)
        envelope = Envelope(session.id, cmd.namespace, cmd.request_id, cmd.traceparent)
        new = loaded.version == 0
        started = turn_started(cmd, session, turn.routed)
        if new:
            started.opens = session.settings
        command = StartTurn(namespace=cmd.namespace, started=started, seen_version=loaded.version)
        executed = await execute(self.deps.sessions, stream, decide, command, envelope, new=new)
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

    async def _run(
        self,
        turn: _Turn,
        session: Session,
        stack: contextlib.AsyncExitStack,
        gate: asyncio.Future[None],
    ) -> TurnEnd | None:
        """The turn; None when it was dropped before it started (the slot stays held)."""
        try:
            return await run_turn(self.deps, turn.cmd, session, gate, turn.routed)
        finally:
            if not gate.cancelled():
                self._release(stack)

    def _release(self, stack: contextlib.AsyncExitStack) -> None:
        """Close a finished turn's control subscription, then free its slot, beside its
        answer rather than before it (a request waiting for the slot is woken when it is
        free; a slot never freed expires with its lease)."""
        task = asyncio.get_running_loop().create_task(stack.aclose(), name="turn-release")
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)


async def _unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
