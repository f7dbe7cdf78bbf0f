"""Chat turns: a user message becomes a recorded run, streamed live as deltas.

A turn holds one of its agent's slots for its whole life. While it runs, its runtime answers
on ``parley.ctl.turn.<turn id>`` (``ping``, ``cancel``), so any runtime can tell a live turn
from one whose process died (no responders) and cancel it wherever it runs.

Concurrent messages on one session follow the policy: ``reject`` (409 ``SESSION_BUSY``),
``enqueue`` (wait for the running turn, bounded) or ``interrupt`` (cancel it, then run).
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg

from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody, ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.runtime import (
    CancelTurn,
    Chat,
    ChatResult,
    FileUploaded,
    RunFinished,
    RuntimeReply,
    SessionCreated,
    SessionSettings,
    TurnStarted,
    session_stream,
)
from parley.eventstore import NO_STREAM, ConcurrencyConflict
from parley.eventstore.kernel import Loaded, load
from parley.kit.telemetry import current_traceparent
from parley.runtime.context import (
    DeltaPublisher,
    Deps,
    StreamRecorder,
    build_run,
    effective,
    running_agent,
)
from parley.runtime.errors import RuntimeFault, error_body
from parley.runtime.files import SessionFiles, is_text
from parley.runtime.journal import Journal
from parley.runtime.messenger import AgentMessenger
from parley.runtime.runs import Interrupted, Run
from parley.runtime.session import Session, evolve, turn_prompt
from parley.runtime.strategies import run_strategy
from parley.runtime.tools import ToolContext

__all__ = ["SessionCache", "Turns", "ctl_subject", "load_session"]

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_PING_TIMEOUT_S = 0.5
_FILE_TEXT_LIMIT = 100_000


def ctl_subject(turn_id: str) -> str:
    """Control subject of a running turn (answered only by the runtime running it)."""
    return f"parley.ctl.turn.{turn_id}"


async def load_session(deps: Deps, session_id: str, namespace: str) -> Loaded[Session]:
    """A session folded from its stream.

    Raises:
        RuntimeFault: ``SESSION_NOT_FOUND`` when absent, deleted or in another namespace.
    """
    loaded = await load(deps.store, session_stream(session_id), evolve)
    session = loaded.state
    if session is None or session.deleted or session.namespace != namespace:
        raise RuntimeFault(ErrorCode.SESSION_NOT_FOUND, f"no session {session_id!r}")
    return loaded


class SessionCache:
    """Sessions folded by this process, kept current with the events it appends.

    A cached copy may miss another process's appends; every turn starts with an append at the
    cached version, so a stale copy fails that append and is read again.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._items: OrderedDict[str, Loaded[Session]] = OrderedDict()
        self.size = size

    def get(self, session_id: str) -> Loaded[Session] | None:
        """The cached fold, if any."""
        loaded = self._items.get(session_id)
        if loaded is not None:
            self._items.move_to_end(session_id)
        return loaded

    def put(self, loaded: Loaded[Session]) -> None:
        """Keep a fold."""
        assert loaded.state is not None
        self._items[loaded.state.id] = loaded
        self._items.move_to_end(loaded.state.id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop(self, session_id: str) -> None:
        """Forget a session (its next use reads it again)."""
        self._items.pop(session_id, None)

    def recorded(self, event: Event) -> None:
        """Fold an event this process appended, if it follows the cached version."""
        cached = self._items.get(event.subject)
        if cached is None:
            if event.type == "session.created":
                self.put(Loaded(evolve(None, event), event.version, event.position))
            return
        if event.version != cached.version + 1:
            self.drop(event.subject)
            return
        self.put(Loaded(evolve(cached.state, event), event.version, event.position))


@dataclass(frozen=True)
class TurnEnd:
    """How a turn ended: the answer, the position of its last event, its error if any."""

    result: ChatResult
    position: int
    error: ErrorBody | None


class Turns:
    """Runs chat turns and answers for the ones running in this process."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.running: dict[str, asyncio.Task[TurnEnd | None]] = {}
        self.cache = SessionCache()

    async def chat(self, cmd: Chat, *, open_session: bool = False) -> RuntimeReply:
        """Start a turn; reply when it ends, or at once for a streamed turn.

        With ``open_session``, a ``session_id`` this process does not know is opened by the
        turn's first append (a conversation the inbox derives an id for); if it exists after
        all, that append fails and the turn starts again on the stored session.
        """
        deps = self.deps
        if cmd.min_position:
            await deps.directory.wait_for(cmd.min_position, 2.0)
        loaded = await self._session(cmd, open_session)
        session = loaded.state
        assert session is not None
        agent = running_agent(deps, session.agent_id, cmd.namespace) if session.agent_id else None
        settings = effective(agent, session.settings)
        if agent is not None and (reason := await deps.budgets.refusal(agent.id, settings.budget)):
            raise RuntimeFault(ErrorCode.BUDGET_EXCEEDED, reason)
        for ref in cmd.files:
            _text_file(session, ref)
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
        position = await self._cancel_turn(turn_id, session_id, cmd.namespace)
        return RuntimeReply(ok=True, session_id=session_id, turn_id=turn_id, position=position)

    # --- starting --------------------------------------------------------------------

    async def _load(
        self, session_id: str, namespace: str, *, fresh: bool = False
    ) -> Loaded[Session]:
        cached = None if fresh else self.cache.get(session_id)
        if cached is not None and cached.state is not None:
            session = cached.state
            if not session.deleted and session.namespace == namespace:
                return cached
        loaded = await load_session(self.deps, session_id, namespace)
        self.cache.put(loaded)
        return loaded

    async def _session(self, cmd: Chat, open_session: bool = False) -> Loaded[Session]:
        if cmd.session_id is not None and open_session and cmd.agent_id is not None:
            if self.cache.get(cmd.session_id) is None:
                running_agent(self.deps, cmd.agent_id, cmd.namespace)
                fresh = Session(
                    id=cmd.session_id,
                    namespace=cmd.namespace,
                    agent_id=cmd.agent_id,
                    settings=SessionSettings(),
                )
                return Loaded(fresh, 0, 0)
        if cmd.session_id is not None:
            loaded = await self._load(cmd.session_id, cmd.namespace, fresh=bool(cmd.files))
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
        running_agent(self.deps, cmd.agent_id, cmd.namespace)
        # A new conversation: appended together with its first turn's start (version 0).
        fresh = Session(
            id=new_id(), namespace=cmd.namespace, agent_id=cmd.agent_id, settings=SessionSettings()
        )
        return Loaded(fresh, 0, 0)

    async def _launch(
        self,
        cmd: Chat,
        loaded: Loaded[Session],
        policy: str,
        deadline: float,
        stack: contextlib.AsyncExitStack,
    ) -> tuple[asyncio.Task[TurnEnd | None], Loaded[Session], int]:
        """Start the run and append its start at the same time.

        The run calls the model at once, but appends nothing and publishes no frame until
        ``turn.started`` is recorded (its gate), so the provider's latency overlaps the
        append. If the append loses a race, the run is dropped without a trace and the turn
        starts again the careful way: make room by the policy, append, then run.
        """
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._spawn(cmd, loaded, stack, gate)
        try:
            position = await self._append_start(cmd, loaded)
        except ConcurrencyConflict:
            gate.cancel()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert loaded.state is not None
            loaded = await self._load(loaded.state.id, cmd.namespace, fresh=True)
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
    ) -> asyncio.Task[TurnEnd | None]:
        assert loaded.state is not None
        task = asyncio.create_task(
            self._run(cmd, loaded.state, stack, gate), name=f"turn-{cmd.turn_id}"
        )
        self.running[cmd.turn_id] = task
        task.add_done_callback(
            lambda done: (
                self.running.pop(cmd.turn_id, None)
                if self.running.get(cmd.turn_id) is done
                else None
            )
        )
        return task

    async def _room(
        self, cmd: Chat, loaded: Loaded[Session], policy: str, deadline: float
    ) -> Loaded[Session]:
        """The session once no turn runs in it, by the policy."""
        while (session := loaded.state) is not None and session.active is not None:
            await self._make_room(session, policy, deadline, cmd.namespace)
            loaded = await self._load(session.id, cmd.namespace, fresh=True)
        return loaded

    async def _start(
        self, cmd: Chat, loaded: Loaded[Session], policy: str, deadline: float
    ) -> tuple[Loaded[Session], int]:
        """Append ``turn.started`` at the session's version (making room again on a race)."""
        while True:
            loaded = await self._room(cmd, loaded, policy, deadline)
            try:
                return loaded, await self._append_start(cmd, loaded)
            except ConcurrencyConflict:
                assert loaded.state is not None
                loaded = await self._load(loaded.state.id, cmd.namespace, fresh=True)

    async def _append_start(self, cmd: Chat, loaded: Loaded[Session]) -> int:
        """Append ``turn.started`` (after ``session.created`` for a new conversation).

        Two single appends, not one atomic batch: a JetStream batch commit costs about ten
        times a single publish, and a new stream's first event can only race with itself.
        """
        session = loaded.state
        assert session is not None
        version = loaded.version
        if version == 0:
            created = SessionCreated(
                session_id=session.id, agent_id=session.agent_id, settings=session.settings
            )
            opener = self._recorder(session.id, cmd, expected_version=NO_STREAM)
            await opener.record("session.created", created)
            version = opener.version or 1
        started = TurnStarted(
            turn_id=cmd.turn_id,
            session_id=session.id,
            agent_id=session.agent_id,
            message=cmd.message,
            context=cmd.context,
            files=cmd.files,
        )
        recorder = self._recorder(session.id, cmd, expected_version=version)
        await recorder.record("turn.started", started)
        return recorder.position

    async def _make_room(self, session: Session, policy: str, deadline: float, ns: str) -> None:
        assert session.active is not None
        turn_id = session.active.turn_id
        if not await self._alive(turn_id):
            await self._finish_orphan(session, turn_id, ns)
            return
        if policy == "reject":
            raise RuntimeFault(
                ErrorCode.SESSION_BUSY,
                f"turn {turn_id} is still running in this conversation; send with policy"
                " `enqueue` or `interrupt`, or cancel it",
                {"turn_id": turn_id},
            )
        if policy == "interrupt":
            await self._cancel_turn(turn_id, session.id, ns)
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeFault(
                ErrorCode.SESSION_BUSY,
                f"turn {turn_id} was still running after {self.deps.settings.session_wait:g}s",
                {"turn_id": turn_id},
            )
        local = self.running.get(turn_id)
        if local is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(local), remaining)
        else:
            await asyncio.sleep(min(0.05, remaining))

    async def _alive(self, turn_id: str) -> bool:
        if turn_id in self.running:
            return True
        try:
            await self.deps.nc.request(ctl_subject(turn_id), b"ping", timeout=_PING_TIMEOUT_S)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return True  # the owner may be busy; do not take its turn away
        return True

    async def _finish_orphan(self, session: Session, turn_id: str, ns: str) -> int:
        """Record the end of a turn whose runtime died.

        Appended at the version the turn was seen running at: if it ended meanwhile (its
        runtime was only between its last event and its unsubscribe), nothing is recorded.
        """
        recorder = StreamRecorder(
            self.deps.store,
            session_stream(session.id),
            subject=session.id,
            namespace=ns,
            correlation_id=None,
            traceparent=current_traceparent(),
            expected_version=session.version,
        )
        recorder.on_recorded = self.cache.recorded
        with contextlib.suppress(ConcurrencyConflict):
            await recorder.record(
                "turn.failed",
                RunFinished(
                    run_id=turn_id,
                    outcome="failed",
                    error=ErrorBody(
                        code=ErrorCode.INTERNAL_ERROR,
                        message="the runtime running this turn stopped before it ended",
                    ),
                    agent_id=session.agent_id,
                    session_id=session.id,
                ),
            )
        return recorder.position

    async def _cancel_turn(self, turn_id: str, session_id: str | None, ns: str) -> int:
        try:
            msg = await self.deps.nc.request(ctl_subject(turn_id), b"cancel", timeout=10.0)
        except nats.errors.NoRespondersError:
            if session_id is None:
                raise RuntimeFault(
                    ErrorCode.NO_ACTIVE_TURN, f"turn {turn_id!r} is not running"
                ) from None
            session = (await load_session(self.deps, session_id, ns)).state
            assert session is not None
            if session.active is None or session.active.turn_id != turn_id:
                raise RuntimeFault(
                    ErrorCode.NO_ACTIVE_TURN, f"turn {turn_id!r} is not running"
                ) from None
            return await self._finish_orphan(session, turn_id, ns)
        return int(msg.data or b"0")

    # --- running ---------------------------------------------------------------------

    async def _run(
        self,
        cmd: Chat,
        session: Session,
        stack: contextlib.AsyncExitStack,
        gate: asyncio.Future[None],
    ) -> TurnEnd | None:
        """The turn; None when it was dropped before it started (the slot stays held)."""
        sub = await self.deps.nc.subscribe(ctl_subject(cmd.turn_id), cb=self._control)
        try:
            return await self._turn(cmd, session, gate)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            if not gate.cancelled():
                await stack.aclose()

    async def _control(self, msg: Msg) -> None:
        turn_id = msg.subject.rsplit(".", 1)[-1]
        task = self.running.get(turn_id)
        position = 0
        if msg.data == b"cancel" and task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                end = await asyncio.shield(task)
                position = end.position if end is not None else 0
        await msg.respond(str(position).encode())

    async def _turn(
        self, cmd: Chat, session: Session, gate: asyncio.Future[None]
    ) -> TurnEnd | None:
        deps = self.deps
        began = time.monotonic()
        agent = deps.directory.get(session.agent_id) if session.agent_id else None
        settings = effective(agent, session.settings)
        sink = DeltaPublisher(
            deps.nc, cmd.turn_id, {"conversation_id": session.id}, live=cmd.stream, gate=gate
        )
        recorder = self._recorder(session.id, cmd)
        recorder.gate = gate
        run: Run | None = None
        error: ErrorBody | None = None
        output = ""
        outcome = "completed"
        try:
            await sink.emit("start", {"agent_id": session.agent_id})
            message = await self._with_files(session, cmd)
            run = await build_run(
                deps,
                settings,
                run_id=cmd.turn_id,
                kind="turn",
                namespace=cmd.namespace,
                agent_id=session.agent_id,
                history=session.history,
                input=message,
                tool_context=ToolContext(
                    namespace=cmd.namespace,
                    agent_id=session.agent_id,
                    session_id=session.id,
                    files=SessionFiles(deps.files, session),
                    messenger=AgentMessenger(
                        deps.nc,
                        namespace=cmd.namespace,
                        agent_id=session.agent_id,
                        hops=cmd.hops,
                    )
                    if session.agent_id
                    else None,
                ),
                journal=Journal(),
                recorder=recorder,
                sink=sink,
            )
            output = await run_strategy(run)
        except asyncio.CancelledError:
            if gate.cancelled():
                return None  # dropped before it started: nothing to record
            outcome, output = "cancelled", "".join(sink.text)
        except Interrupted as exc:
            outcome, output = "interrupted", exc.partial
            error = ErrorBody(
                code=ErrorCode.PROVIDER_ERROR,
                message=f"the provider's stream broke after it started: {exc.reason}",
            )
        except Exception as exc:  # every failure ends the turn with a recorded outcome
            outcome, output = "failed", "".join(sink.text)
            error = error_body(exc)
        usage = run.usage if run is not None else None
        finished = RunFinished(
            run_id=cmd.turn_id,
            outcome=outcome,  # type: ignore[arg-type]
            output=output,
            response_time_ms=round((time.monotonic() - began) * 1000, 3),
            steps=run.steps if run is not None else 0,
            error=error,
            agent_id=session.agent_id,
            session_id=session.id,
        )
        if usage is not None:
            finished.usage = usage
        if session.agent_id is not None and outcome in ("completed", "failed", "interrupted"):
            deps.stats.record(
                session.agent_id, outcome == "completed", finished.response_time_ms / 1000
            )
        try:
            await recorder.record(f"turn.{outcome}", finished)
        except Exception:
            log.exception("could not record the end of turn %s", cmd.turn_id)
        frame: dict[str, Any] = {
            "outcome": outcome,
            "response": output,
            "usage": msgspec.to_builtins(finished.usage),
            "response_time_ms": finished.response_time_ms,
        }
        if error is not None:
            await sink.emit("error", {**frame, "code": error.code.value, "message": error.message})
        else:
            await sink.emit("end", frame)
        result = ChatResult(
            session_id=session.id,
            turn_id=cmd.turn_id,
            response=output,
            outcome=outcome,  # type: ignore[arg-type]
            tokens_used=finished.usage.total_tokens,
            usage=finished.usage,
            response_time_ms=finished.response_time_ms,
            tool_calls=run.tool_calls if run is not None else [],
        )
        return TurnEnd(result, recorder.position, error)

    async def _with_files(self, session: Session, cmd: Chat) -> str:
        """The user's message as the model sees it: context and referenced files' text."""
        started = TurnStarted(
            turn_id=cmd.turn_id,
            session_id=session.id,
            agent_id=session.agent_id,
            message=cmd.message,
            context=cmd.context,
        )
        parts = [turn_prompt(started)]
        for ref in cmd.files:
            meta = _text_file(session, ref)
            data = await self.deps.files.get(meta.file_id) or b""
            text = data[:_FILE_TEXT_LIMIT].decode("utf-8", errors="replace")
            parts.append(f"[file {meta.name}, as data]\n{text}")
        return "\n\n".join(parts)

    def _recorder(
        self, session_id: str, cmd: Chat, expected_version: int | None = None
    ) -> StreamRecorder:
        recorder = StreamRecorder(
            self.deps.store,
            session_stream(session_id),
            subject=session_id,
            namespace=cmd.namespace,
            correlation_id=cmd.request_id,
            traceparent=cmd.traceparent or current_traceparent(),
            expected_version=expected_version,
        )
        recorder.on_recorded = self.cache.recorded
        return recorder


def _text_file(session: Session, ref: str) -> FileUploaded:
    meta = session.file(ref)
    if meta is None:
        raise RuntimeFault(ErrorCode.FILE_NOT_FOUND, f"the session has no file {ref!r}")
    if not is_text(meta.content_type):
        raise RuntimeFault(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"file {meta.name!r} is {meta.content_type}; only text files can be referenced in chat",
        )
    return meta
