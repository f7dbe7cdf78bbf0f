"""Run an aggregate's decider through the repository: decide, wrap, append, retry.

The one command path of the runtime: :func:`execute` hands the aggregate's pure
``decide(state, command, ctx)`` to :meth:`Repository.execute`, which loads (or uses its
cached copy), appends at the expected version and decides again when another writer won.
"""

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.decision import to_new_events
from parley.contracts.envelope import NewEvent
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Outcome
from parley.eventstore.repository import Repository
from parley.kit.telemetry import current_traceparent
from parley.runtime.recording import SOURCE

__all__ = ["Envelope", "Executed", "execute"]

S = TypeVar("S")
C = TypeVar("C")
F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the events of one command carry besides their payloads."""

    subject: str
    namespace: str
    correlation_id: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Executed(Generic[S, F]):
    """What a command did: where its events landed, and the effects still to perform."""

    outcome: Outcome[S]
    effects: Sequence[F]


async def execute(
    repository: Repository[S],
    stream: str,
    decide: Callable[[S | None, C, Context], Decision[F]],
    command: C,
    envelope: Envelope,
    *,
    expected_version: int | None = None,
    new: bool = False,
) -> Executed[S, F]:
    """Decide ``command`` on the stream's state and append what it decided.

    With ``new`` the stream is believed not to exist yet (a fresh id): the decider sees it
    empty without a read, and the append at "no stream" tells if that was wrong.
    """
    if new and repository.cached(stream) is None:
        repository.remember(stream, Loaded(None, 0, 0))
    ctx = Context()
    traceparent = envelope.traceparent or current_traceparent()
    effects: list[Sequence[F]] = [()]

    def decide_now(state: S | None) -> list[NewEvent]:
        decision = decide(state, command, ctx)
        effects[0] = decision.effects
        return to_new_events(
            decision.events,
            subject=envelope.subject,
            namespace=envelope.namespace,
            source=SOURCE,
            now=ctx.now,
            correlationid=envelope.correlation_id,
            traceparent=traceparent,
        )

    outcome = await repository.execute(stream, decide_now, expected_version=expected_version)
    return Executed(outcome, effects[0])
