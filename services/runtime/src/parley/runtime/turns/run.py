"""Running one chat turn: build the run, stream its frames, record how it ended."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from typing import Literal

import msgspec

from parley.aggregates.journal import Journal
from parley.aggregates.session import Session
from parley.aggregates.session import turn_prompt
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import Chat
from parley.contracts.runtime import ChatResult
from parley.contracts.runtime import FileUploaded
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import TurnStarted
from parley.contracts.runtime import session_stream
from parley.kit.telemetry import current_traceparent
from parley.runtime.adapters.files import SessionFiles
from parley.runtime.adapters.files import is_text
from parley.runtime.adapters.rollouts import Routed
from parley.runtime.deps import Deps
from parley.runtime.domain import effective
from parley.runtime.errors import RuntimeFault
from parley.runtime.errors import error_body
from parley.runtime.recording import DeltaPublisher
from parley.runtime.recording import StreamRecorder
from parley.runtime.run_loop import Interrupted
from parley.runtime.run_loop import Run
from parley.runtime.run_setup import RunTally
from parley.runtime.run_setup import build_run
from parley.runtime.strategies import run_strategy

__all__ = ["TurnEnd", "run_turn", "text_file", "turn_started"]

log = logging.getLogger(__name__)

_FILE_TEXT_LIMIT = 100_000
Outcome = Literal["completed", "failed", "cancelled", "interrupted"]


@dataclass(frozen=True)
class TurnEnd:
    """How a turn ended: the answer, the position of its last event, its error if any."""

    result: ChatResult
    position: int
    error: ErrorBody | None


def turn_started(cmd: Chat, session: Session, routed: Routed | None = None) -> TurnStarted:
    """The start of the turn ``cmd`` asks for in ``session`` (on the version ``routed``)."""
    return TurnStarted(
        turn_id=cmd.turn_id,
        session_id=session.id,
        agent_id=session.agent_id,
        message=cmd.message,
        context=cmd.context,
        files=cmd.files,
        **_version_fields(routed),
    )


def _version_fields(routed: Routed | None) -> dict[str, Any]:
    return msgspec.structs.asdict(routed.version) if routed is not None else {}


def text_file(session: Session, ref: str) -> FileUploaded:
    """A session file a message references, which must be text.

    Raises:
        RuntimeFault: ``FILE_NOT_FOUND`` or ``UNSUPPORTED_MEDIA_TYPE``.
    """
    meta = session.file(ref)
    if meta is None:
        raise RuntimeFault(ErrorCode.FILE_NOT_FOUND, f"the session has no file {ref!r}")
    if not is_text(meta.content_type):
        raise RuntimeFault(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"file {meta.name!r} is {meta.content_type}; only text files can be referenced in chat",
        )
    return meta


async def run_turn(
    deps: Deps, cmd: Chat, session: Session, gate: asyncio.Future[None], routed: Routed | None
) -> TurnEnd | None:
    """The turn on the agent's definition ``routed`` chose; None when it was dropped before
    it started (``gate`` cancelled)."""
    tally = RunTally(deps.scrubber, cmd.turn_id, session.agent_id, session.id)
    settings = effective(routed.agent if routed is not None else None, session.settings)
    sink = DeltaPublisher(
        deps.nc, cmd.turn_id, {"conversation_id": session.id}, live=cmd.stream, gate=gate
    )
    recorder = StreamRecorder(
        deps.store,
        session_stream(session.id),
        subject=session.id,
        namespace=cmd.namespace,
        correlation_id=cmd.request_id,
        traceparent=cmd.traceparent or current_traceparent(),
    )
    recorder.on_recorded = deps.sessions.observe  # the session's copy follows the run
    recorder.gate = gate
    run: Run | None = None
    error: ErrorBody | None = None
    output = ""
    outcome: Outcome = "completed"
    try:
        await sink.emit("start", {"agent_id": session.agent_id})
        run = await build_run(
            deps,
            settings,
            run_id=cmd.turn_id,
            kind="turn",
            namespace=cmd.namespace,
            agent_id=session.agent_id,
            history=session.history,
            input=await _with_files(deps, session, cmd),
            session_id=session.id,
            files=SessionFiles(deps.files, session),
            hops=cmd.hops,
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
        outcome, output, error = "interrupted", exc.partial, exc.to_body()
    except Exception as exc:  # every failure ends the turn with a recorded outcome
        outcome, output = "failed", "".join(sink.text)
        error = error_body(exc)
    finished = msgspec.structs.replace(
        tally.finished(run, outcome, output, error), **_version_fields(routed)
    )
    output, error = finished.output, finished.error
    if session.agent_id is not None and outcome in ("completed", "failed", "interrupted"):
        deps.stats.record(
            session.agent_id, outcome == "completed", finished.response_time_ms / 1000
        )
    try:
        await recorder.record(f"turn.{outcome}", finished)
    except Exception:
        # not recorded, not answered as done: the client hears it failed, and the turn's
        # end is recorded as failed by whoever finds it open (turns/control.py)
        log.exception("could not record the end of turn %s", cmd.turn_id)
        outcome = "failed"
        error = ErrorBody(
            code=ErrorCode.SERVICE_UNAVAILABLE,
            message="the turn ran but its end could not be recorded; read the conversation "
            "before retrying",
        )
        finished = msgspec.structs.replace(finished, outcome=outcome, error=error)
    await _last_frame(sink, finished, error)
    result = ChatResult(
        session_id=session.id,
        turn_id=cmd.turn_id,
        response=output,
        outcome=outcome,
        tokens_used=finished.usage.total_tokens,
        usage=finished.usage,
        response_time_ms=finished.response_time_ms,
        tool_calls=run.tool_calls if run is not None else [],
    )
    return TurnEnd(result, recorder.position, error)


async def _last_frame(sink: DeltaPublisher, finished: RunFinished, error: ErrorBody | None) -> None:
    frame: dict[str, Any] = {
        "outcome": finished.outcome,
        "response": finished.output,
        "usage": msgspec.to_builtins(finished.usage),
        "response_time_ms": finished.response_time_ms,
    }
    if error is not None:
        await sink.emit("error", {**frame, "code": error.code.value, "message": error.message})
    else:
        await sink.emit("end", frame)


async def _with_files(deps: Deps, session: Session, cmd: Chat) -> str:
    """The user's message as the model sees it: context and referenced files' text."""
    parts = [turn_prompt(turn_started(cmd, session))]
    for ref in cmd.files:
        meta = text_file(session, ref)
        data = await deps.files.get(meta.file_id) or b""
        text = data[:_FILE_TEXT_LIMIT].decode("utf-8", errors="replace")
        parts.append(f"[file {meta.name}, as data]\n{text}")
    return "\n\n".join(parts)
