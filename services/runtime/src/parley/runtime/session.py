"""A session, folded from its stream ``session-<id>``: settings, files, history, active turn.

The history a model sees is each turn's user message and its final (or partial) answer;
tool rounds stay in the session's events and views but not in later turns' prompts, so the
history alternates user/assistant as every provider requires.

Pure: ``evolve(state, event) -> state`` and the deciders below do no I/O.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.runtime import FileUploaded, SessionSettings, TurnStarted
from parley.llm import Message

__all__ = ["Session", "evolve"]

_FINISHED = frozenset({"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"})


@dataclass(frozen=True)
class ActiveTurn:
    """A turn that started and has not finished (yet, or ever: its runtime died)."""

    turn_id: str
    started_at: datetime


@dataclass(frozen=True)
class Session:
    """What a turn needs to know about its session."""

    id: str
    namespace: str
    agent_id: str | None
    settings: SessionSettings
    deleted: bool = False
    files: dict[str, FileUploaded] = field(default_factory=dict)
    history: tuple[Message, ...] = ()
    active: ActiveTurn | None = None
    version: int = 0

    def file(self, name_or_id: str) -> FileUploaded | None:
        """A file by id, or by name (the newest of that name)."""
        if name_or_id in self.files:
            return self.files[name_or_id]
        named = [f for f in self.files.values() if f.name == name_or_id]
        return named[-1] if named else None


def evolve(state: Session | None, event: Event) -> Session:
    """Fold one session event."""
    data, kind = event.data, event.type
    if state is None:
        if kind != "session.created":
            raise ValueError(f"session stream starts with {kind}, not session.created")
        return Session(
            id=data["session_id"],
            namespace=event.namespace,
            agent_id=data.get("agent_id"),
            settings=msgspec.convert(data["settings"], SessionSettings),
            version=event.version,
        )
    state = replace(state, version=event.version)
    if kind == "session.settings_changed":
        return replace(state, settings=msgspec.convert(data["settings"], SessionSettings))
    if kind == "session.deleted":
        return replace(state, deleted=True)
    if kind == "file.uploaded":
        upload = msgspec.convert(data, FileUploaded)
        return replace(state, files={**state.files, upload.file_id: upload})
    if kind == "file.deleted":
        return replace(state, files={k: v for k, v in state.files.items() if k != data["file_id"]})
    if kind == "turn.started":
        started = msgspec.convert(data, TurnStarted)
        return replace(
            state,
            active=ActiveTurn(started.turn_id, event.time),
            history=(*state.history, Message("user", turn_prompt(started))),
        )
    if kind in _FINISHED:
        if state.active is not None and state.active.turn_id == data.get("run_id"):
            state = replace(state, active=None)
        answer = data.get("output") or f"[no answer: the turn {kind.removeprefix('turn.')}]"
        return replace(state, history=(*state.history, Message("assistant", answer)))
    return state


def turn_prompt(started: TurnStarted) -> str:
    """The user message of a turn as the model sees it: text, then context as data."""
    if not started.context:
        return started.message
    facts = msgspec.json.encode(started.context).decode()
    return f"{started.message}\n\n[context, as data: {facts}]"
