"""A session, folded from its stream ``session-<id>``, and its decider.

The runtime decides with :func:`decide` and runs turns from the folded state; the edge's
runtime projection folds the same :func:`evolve` and only maps the state to its views.

The history a model sees (:attr:`Session.history`) is each turn's user message and its final
(or partial) answer; tool rounds stay in :attr:`Session.entries` (what the API shows) but not
in later turns' prompts, so the history alternates user/assistant as every provider requires.

Payloads the runtime does not use (tool results, errors, usage) are kept as the events carry
them, so a view shows fields an older reader does not know.
"""

from datetime import datetime
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar

import msgspec

from parley.aggregates._chain import Chain
from parley.aggregates._chain import append
from parley.aggregates._chain import items
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.decision import Moved
from parley.aggregates.fold import born
from parley.aggregates.fold import kinds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.runtime import EVENT_TYPES
from parley.contracts.runtime import FileDeleted
from parley.contracts.runtime import FileUploaded
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import SessionCreated
from parley.contracts.runtime import SessionDeleted
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import SessionSettingsChanged
from parley.contracts.runtime import TurnStarted
from parley.contracts.runtime import session_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "FINISHED",
    "ActiveTurn",
    "AttachFile",
    "ChangeSettings",
    "Delete",
    "EndOrphanTurn",
    "Entry",
    "EntryRecord",
    "Moved",
    "Open",
    "RemoveFile",
    "Said",
    "Session",
    "SessionCommand",
    "StartTurn",
    "decide",
    "evolve",
    "opens",
    "turn_prompt",
]

CATEGORY = session_stream.category
"""The stream category this aggregate folds (``session-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "session", "file", "turn", "tool")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

FINISHED = frozenset({"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"})
"""Events that end a turn."""
ORPHAN_MESSAGE = "the runtime running this turn stopped before it ended"

TimeT = TypeVar("TimeT")


class ActiveTurn(msgspec.Struct, frozen=True):
    """A turn that started and has not finished (yet, or ever: its runtime died)."""

    turn_id: str
    started_at: datetime


class Said(msgspec.Struct, frozen=True):
    """One message of the history a model sees."""

    role: Literal["user", "assistant"]
    content: str


class EntryRecord(msgspec.Struct, Generic[TimeT], frozen=True, kw_only=True):
    """One message of a conversation: `user`, `assistant` (maybe with tool calls) or `tool`;
    its ``time`` a datetime in :class:`Entry`, text in the API's view of it."""

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    turn_id: str
    time: TimeT
    context: dict[str, Any] | None = None
    """User messages: the turn's extra facts."""
    files: list[str] | None = None
    """User messages: referenced session files."""
    tool_calls: list[dict[str, Any]] | None = None
    """Assistant messages that asked for tools."""
    call_id: str | None = None
    """Tool results: the call answered."""
    name: str | None = None
    """Tool results: the tool."""
    error: dict[str, Any] | None = None
    """Failed tool calls and turns: `{code, message}`."""
    outcome: str | None = None
    """A turn's final answer: `completed`, `failed`, `cancelled` or `interrupted`."""
    usage: dict[str, Any] | None = None
    """A turn's final answer: tokens and cost of the whole turn."""
    response_time_ms: float | None = None


class Entry(EntryRecord[datetime], frozen=True, kw_only=True):
    """One message of the conversation as the API shows it: user, assistant or tool."""

    prompt: str | None = None
    """User messages: the text the model sees (message, then context as data)."""


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation: settings, files, messages, and the turn running in it."""

    id: str
    namespace: str
    agent_id: str | None
    settings: SessionSettings
    title: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    files: dict[str, FileUploaded] = {}
    uploaded_at: dict[str, datetime] = {}
    trail: Chain[Entry] | None = None
    """The messages, newest last (see :attr:`entries`)."""
    active: ActiveTurn | None = None
    outcomes: dict[str, str | None] = {}
    """Turn id → how it ended (None while it runs)."""
    turn_count: int = 0
    last_turn_at: datetime | None = None
    version: int = 0

    def file(self, name_or_id: str) -> FileUploaded | None:
        """A file by id, or by name (the newest of that name)."""
        if name_or_id in self.files:
            return self.files[name_or_id]
        named = [f for f in self.files.values() if f.name == name_or_id]
        return named[-1] if named else None

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The conversation's messages as the API shows them, oldest first."""
        return items(self.trail)

    @property
    def entry_count(self) -> int:
        """How many messages :attr:`entries` holds."""
        return self.trail.length if self.trail is not None else 0

    @property
    def history(self) -> tuple[Said, ...]:
        """What a model sees of the conversation: user messages and turns' final answers."""
        said: list[Said] = []
        for entry in self.entries:
            if entry.role == "user":
                said.append(Said("user", entry.prompt or entry.content))
            elif entry.outcome is not None:
                fallback = f"[no answer: the turn {entry.outcome}]"
                said.append(Said("assistant", entry.content or fallback))
        return tuple(said)

    def live_in(self, namespace: str) -> bool:
        """Whether the session exists, undeleted, in ``namespace``."""
        return not self.deleted and self.namespace == namespace


def evolve(state: Session | None, event: Event) -> Session:
    """Fold one session event.

    Raises:
        ValueError: When the stream does not start with ``session.created`` or a turn that
            opens it, or a payload does not match its type.
    """
    data, kind, at = event.data, event.type, event.time
    if state is None:
        if not opens(event):
            raise ValueError(f"session stream starts with {kind}, not session.created")
        if kind == "turn.started":  # a chat message opened it: the session, then its turn
            state = Session(
                id=data["session_id"],
                agent_id=data.get("agent_id"),
                settings=msgspec.convert(data["opens"], SessionSettings),
                **born(event),
            )
        else:
            created = msgspec.convert(data, SessionCreated)
            return Session(
                id=created.session_id,
                agent_id=created.agent_id,
                settings=created.settings,
                title=created.title,
                updated_at=at,
                **born(event),
            )
    state = msgspec.structs.replace(state, version=event.version, updated_at=at)
    run_id = str(data.get("run_id") or data.get("turn_id") or "")
    if kind == "session.settings_changed":
        settings = msgspec.convert(data, SessionSettingsChanged).settings
        return msgspec.structs.replace(state, settings=settings)
    if kind == "session.deleted":
        return msgspec.structs.replace(state, deleted=True)
    if kind == "file.uploaded":
        upload = msgspec.convert(data, FileUploaded)
        return msgspec.structs.replace(
            state,
            files={**state.files, upload.file_id: upload},
            uploaded_at={**state.uploaded_at, upload.file_id: at},
        )
    if kind == "file.deleted":
        gone = data["file_id"]
        return msgspec.structs.replace(
            state,
            files={k: v for k, v in state.files.items() if k != gone},
            uploaded_at={k: v for k, v in state.uploaded_at.items() if k != gone},
        )
    if kind == "turn.started":
        started = msgspec.convert(data, TurnStarted)
        entry = Entry(
            role="user",
            content=started.message,
            turn_id=started.turn_id,
            time=at,
            prompt=turn_prompt(started),
            context=started.context or None,
            files=started.files or None,
        )
        return msgspec.structs.replace(
            state,
            active=ActiveTurn(started.turn_id, at),
            trail=append(state.trail, entry),
            outcomes={**state.outcomes, started.turn_id: None},
            turn_count=state.turn_count + 1,
            last_turn_at=at,
        )
    if kind == "turn.step_recorded":
        if data.get("kind") != "model" or not data.get("tool_calls"):
            return state
        asked = Entry(
            role="assistant",
            content=str(data.get("text", "")),
            turn_id=run_id,
            time=at,
            tool_calls=list(data["tool_calls"]),
        )
        return msgspec.structs.replace(state, trail=append(state.trail, asked))
    if kind in ("tool.completed", "tool.failed"):
        failed = kind == "tool.failed"
        result = Entry(
            role="tool",
            content=str(data.get("message" if failed else "content", "")),
            turn_id=run_id,
            time=at,
            call_id=data.get("call_id"),
            name=data.get("name"),
            error={"code": data.get("code"), "message": data.get("message")} if failed else None,
        )
        return msgspec.structs.replace(state, trail=append(state.trail, result))
    if kind in FINISHED:
        outcome = kind.removeprefix("turn.")
        answer = Entry(
            role="assistant",
            content=str(data.get("output", "")),
            turn_id=run_id,
            time=at,
            outcome=outcome,
            error=data.get("error"),
            usage=data.get("usage") or {},
            response_time_ms=data.get("response_time_ms"),
        )
        active = state.active
        if active is not None and active.turn_id == run_id:
            active = None
        outcomes = state.outcomes
        if run_id in outcomes:
            outcomes = {**outcomes, run_id: outcome}
        return msgspec.structs.replace(
            state, active=active, outcomes=outcomes, trail=append(state.trail, answer)
        )
    return state


def opens(event: Event) -> bool:
    """Whether ``event`` opens a session: ``session.created``, or the start of the turn
    whose message opened the conversation (``TurnStarted.opens``)."""
    return event.type == "session.created" or (
        event.type == "turn.started" and event.data.get("opens") is not None
    )


def turn_prompt(started: TurnStarted) -> str:
    """The user message of a turn as the model sees it: text, then context as data."""
    if not started.context:
        return started.message
    facts = msgspec.json.encode(started.context).decode()
    return f"{started.message}\n\n[context, as data: {facts}]"


# --- the decider -------------------------------------------------------------------------


class Open(msgspec.Struct, frozen=True, kw_only=True):
    """Open a session (refused with :class:`Moved` when the stream exists)."""

    session_id: str
    agent_id: str | None
    settings: SessionSettings
    title: str | None = None


class _OnSession(msgspec.Struct, frozen=True, kw_only=True):
    """A command on a live session of ``namespace`` (else it is ``SESSION_NOT_FOUND``)."""

    namespace: str


class ChangeSettings(_OnSession, frozen=True, kw_only=True):
    """Replace the settings (already checked against the catalogues and the agent)."""

    settings: SessionSettings
    changed: list[str]


class Delete(_OnSession, frozen=True, kw_only=True):
    """Delete the session."""


class AttachFile(_OnSession, frozen=True, kw_only=True):
    """Record a file whose bytes are stored."""

    file: FileUploaded


class RemoveFile(_OnSession, frozen=True, kw_only=True):
    """Remove a file."""

    file_id: str


class StartTurn(_OnSession, frozen=True, kw_only=True):
    """Start a turn on the session exactly as the caller saw it (``seen_version``), idle."""

    started: TurnStarted
    seen_version: int


class EndOrphanTurn(msgspec.Struct, frozen=True, kw_only=True):
    """Fail a turn whose runtime died, if the session is still as it was seen with it."""

    turn_id: str
    seen_version: int


SessionCommand = (
    Open | ChangeSettings | Delete | AttachFile | RemoveFile | StartTurn | EndOrphanTurn
)


def decide(state: Session | None, command: SessionCommand, ctx: Context) -> Decision[None]:
    """The events a session command causes.

    Raises:
        Moved: An :class:`Open` of an existing stream, or a :class:`StartTurn` on a session
            that changed or is busy since the caller saw it.
        ParleyError: ``SESSION_NOT_FOUND`` (absent, deleted, other namespace),
            ``FILE_NOT_FOUND``.
    """
    del ctx  # time comes with the envelope; nothing here mints ids
    if isinstance(command, Open):
        if state is not None:
            raise Moved(f"session {command.session_id!r} already exists")
        created = SessionCreated(
            session_id=command.session_id,
            agent_id=command.agent_id,
            settings=command.settings,
            title=command.title,
        )
        return Decision([("session.created", created)])
    if isinstance(command, EndOrphanTurn):
        return Decision(_end_orphan(state, command))
    if isinstance(command, StartTurn) and command.started.opens is not None:
        if state is not None:
            raise Moved(f"session {command.started.session_id!r} already exists")
        return Decision([("turn.started", command.started)])  # it opens the session
    session = _live(state, command.namespace)
    events: Decided
    if isinstance(command, ChangeSettings):
        events = [
            (
                "session.settings_changed",
                SessionSettingsChanged(
                    session_id=session.id, settings=command.settings, changed=command.changed
                ),
            )
        ]
    elif isinstance(command, Delete):
        events = [("session.deleted", SessionDeleted(session_id=session.id))]
    elif isinstance(command, AttachFile):
        events = [("file.uploaded", command.file)]
    elif isinstance(command, RemoveFile):
        if command.file_id not in session.files:
            raise ParleyError(
                ErrorCode.FILE_NOT_FOUND, f"the session has no file {command.file_id!r}"
            )
        events = [("file.deleted", FileDeleted(session_id=session.id, file_id=command.file_id))]
    else:
        if session.version != command.seen_version or session.active is not None:
            raise Moved(f"session {session.id!r} changed; look again")
        events = [("turn.started", command.started)]
    return Decision(events)


def _live(state: Session | None, namespace: str) -> Session:
    if state is None or not state.live_in(namespace):
        raise ParleyError(ErrorCode.SESSION_NOT_FOUND, "no such session")
    return state


def _end_orphan(state: Session | None, command: EndOrphanTurn) -> Decided:
    if state is None or state.version != command.seen_version:
        return []  # it ended meanwhile (or something else happened): leave it be
    active = state.active
    if active is None or active.turn_id != command.turn_id:
        return []
    failed = RunFinished(
        run_id=command.turn_id,
        outcome="failed",
        error=ErrorBody(code=ErrorCode.INTERNAL_ERROR, message=ORPHAN_MESSAGE),
        agent_id=state.agent_id,
        session_id=state.id,
    )
    return [("turn.failed", failed)]
