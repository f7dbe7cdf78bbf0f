"""The one shape of every aggregate, and how its decisions become events.

Every aggregate module in :mod:`parley.aggregates` has three parts:

- a state type (a frozen msgspec Struct), ``None`` before the stream's first event;
- ``evolve(state, event) -> state``: fold one recorded event, the only fold of that stream
  (:mod:`parley.aggregates.fold` holds what every fold shares);
- ``decide(state, command, ctx) -> Decision``: what a command does, with time and id minting
  injected through :class:`Context`, so a decider is pure and replayable in tests.

A :class:`Decision` holds the events to append as ``(type, payload)`` pairs and the effects
to perform once they are appended (messages to send, timers to arm). The service's handler
wraps the events in envelopes (:func:`to_new_events`, which names the acting principal) and
appends them through :class:`parley.eventstore.repository.Repository`.
"""

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Generic
from typing import TypeVar

import msgspec

from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import current_actor
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id

__all__ = ["Context", "Decided", "Decision", "Moved", "check_expected", "to_new_events"]

F = TypeVar("F")

Decided = list[tuple[str, msgspec.Struct]]
"""Events a decider emits: ``(type, payload)`` pairs, in append order."""


class Moved(ParleyError):
    """The aggregate is not as the command saw it (it exists already, changed, or is busy):
    load it again and decide again."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.CONCURRENCY_CONFLICT, message)


def check_expected(what: str, expected: int | None, actual: int) -> None:
    """Refuse a command that expects ``what`` at a version other than its ``actual`` one.

    Raises:
        ParleyError: ``CONCURRENCY_CONFLICT`` naming both versions, when ``expected`` is given
            and is not ``actual``.
    """
    if expected is not None and expected != actual:
        raise ParleyError(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"{what} is at version {actual}, not {expected}; read it again and retry",
            {"expected": expected, "actual": actual},
        )


@dataclass(frozen=True, slots=True)
class Context:
    """What a decider may know besides state and command: the time and fresh ids."""

    now: datetime = field(default_factory=utcnow)
    """The decision's time; every event it emits carries it."""
    mint: Callable[[], str] = new_id
    """Makes a fresh id (UUIDv7 in production, a counter in tests)."""


@dataclass(frozen=True, slots=True)
class Decision(Generic[F]):
    """Events to append and the effects to perform after they are appended."""

    events: Decided = field(default_factory=list)
    effects: Sequence[F] = ()

    def __bool__(self) -> bool:
        return bool(self.events or self.effects)


def to_new_events(
    decided: Sequence[tuple[str, msgspec.Struct]],
    *,
    subject: str,
    namespace: str,
    source: str,
    now: datetime,
    correlationid: str | None = None,
    causationid: str | None = None,
    traceparent: str | None = None,
    actor: str | None = None,
) -> list[NewEvent]:
    """Wrap decided ``(type, payload)`` pairs in envelopes ready to append.

    Every envelope names ``actor``, by default the principal the running command acts for
    (:data:`parley.contracts.envelope.current_actor`).
    """
    named = actor if actor is not None else current_actor.get()
    return [
        NewEvent(
            type=event_type,
            subject=subject,
            data=msgspec.to_builtins(payload),
            namespace=namespace,
            source=source,
            time=now,
            correlationid=correlationid,
            causationid=causationid,
            traceparent=traceparent,
            actor=named,
        )
        for event_type, payload in decided
    ]
