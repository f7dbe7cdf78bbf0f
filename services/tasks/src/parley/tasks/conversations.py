"""Decide, append, then send: the one command path of tasks and group runs.

:meth:`Conversations.decide` folds a batch of commands through the aggregate's pure
``decide`` and appends all their events at once through the
:class:`~parley.eventstore.repository.Repository` (which decides again on the new state when
another writer got there first). The messages to send go out only after the append: the
events are the truth, a message is its consequence. Their ids are recorded in the events, so
a restarted process can tell (from the conversation's stream) which ones never left and send
them then (:meth:`Conversations.recover`).

Decisions on one conversation run one at a time in this process (a
:class:`~parley.eventstore.locks.KeyedLock`), so the proposals of a round that arrive together do
not conflict with each other; across processes the expected version serialises them.
"""

import logging
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Generic
from typing import Protocol
from typing import TypeVar

from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.aggregates.mail import Mail
from parley.contracts.acl import AclMessage
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.eventstore import EventTooLarge
from parley.eventstore.locks import KeyedLock
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Outcome
from parley.eventstore.repository import Repository
from parley.tasks.adapters.mailer import Mailer
from parley.tasks.adapters.mailer import sent_message_ids
from parley.tasks.domain import Kind
from parley.tasks.domain import Rules
from parley.tasks.domain import Streams

__all__ = ["Conversations", "SOURCE"]

log = logging.getLogger(__name__)

SOURCE = "/parley/tasks"
"""The ``source`` of every event the service appends."""


class _Request(Protocol):
    """What every tasks command carries besides its own fields."""

    @property
    def namespace(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def traceparent(self) -> str | None: ...


class _Conversation(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=_Conversation)
C = TypeVar("C")


class Conversations(Generic[S, C]):
    """The conversations of one kind (tasks or group runs): commands, answers, timers."""

    def __init__(
        self, rules: Rules[S, C], repository: Repository[S], mailer: Mailer, streams: Streams
    ) -> None:
        self.rules, self.repository, self.mailer, self.streams = rules, repository, mailer, streams
        self._locks = KeyedLock()

    async def decide(
        self,
        key: str,
        namespace: str,
        commands: Sequence[C],
        *,
        new: bool = False,
        correlation: str | None = None,
        traceparent: str | None = None,
    ) -> Outcome[S]:
        """Decide ``commands`` in order on the conversation and append every event at once.

        Args:
            key: The task or run id.
            namespace: Its namespace (for the events' envelopes and the messages).
            commands: What to decide, in order: each one on the state the previous left.
            new: The id was just minted or given for a new conversation: decide on an empty
                stream without reading it (the append catches an id that is taken).
            correlation: The events' ``correlationid``.
            traceparent: The events' ``traceparent``.

        Returns:
            The outcome (new state, version, position, events appended).
        """
        stream = self.stream(namespace, key)
        mail: list[Mail] = []

        def decide_all(state: S | None) -> list[NewEvent]:
            mail.clear()  # a retry decides again from scratch
            ctx = Context(now=utcnow())
            events: list[NewEvent] = []
            for command in commands:
                decision = self.rules.decide(state, command, ctx)
                decided = to_new_events(
                    decision.events,
                    subject=key,
                    namespace=namespace,
                    source=SOURCE,
                    now=ctx.now,
                    correlationid=correlation,
                    traceparent=traceparent,
                )
                for new_event in decided:
                    version = (state.version if state is not None else 0) + 1
                    recorded = Event.record(new_event, stream=stream, version=version)
                    state = self.rules.evolve(state, recorded)
                events.extend(decided)
                mail.extend(decision.effects)
            return events

        async with self._locks.hold(stream):
            if new:
                self.repository.remember(stream, Loaded(None, 0, 0))
            outcome = await self.repository.execute(stream, decide_all)
        if mail and outcome.state is not None:
            await self._dispatch(outcome.state, list(mail))
        return outcome

    async def command(
        self, key: str, request: _Request, command: C, *, new: bool = False
    ) -> Outcome[S]:
        """Decide a client's ``command``, correlated with its ``request`` (see :meth:`decide`)."""
        return await self.decide(
            key,
            request.namespace,
            [command],
            new=new,
            correlation=request.request_id,
            traceparent=request.traceparent,
        )

    async def on_messages(self, key: str, namespace: str, messages: Sequence[AclMessage]) -> None:
        """Fold the answers of one inbox batch to a conversation of ``namespace`` into one
        append.

        Raises:
            ParleyError: ``TASK_NOT_FOUND``/``RUN_NOT_FOUND`` when it does not exist.
        """
        answers = self.rules.answers(messages)
        try:
            await self.decide(key, namespace, answers, correlation=key)
        except EventTooLarge as exc:  # redelivering them would fail the same way: end it
            why = (
                f"an answer, or the result it makes, is {exc.size} bytes: over the"
                f" {exc.limit} bytes an event may hold"
            )
            log.warning("%s %s: %s; ending it", self.kind, key, why)
            await self.decide(key, namespace, [self.rules.unrecordable(why)], correlation=key)

    async def on_due(self, key: str, namespace: str) -> None:
        """A deadline of the conversation passed."""
        await self.decide(key, namespace, [self.rules.tick], correlation=key)

    async def recover(self, open_states: Iterable[S]) -> None:
        """Send what open conversations should have sent but did not (a process died)."""
        now = utcnow()
        for state in open_states:
            pending = self.rules.pending(state, now)
            if not pending:
                continue
            try:
                conversation = self.streams.conversation(self.kind, state.namespace, state.id)
                sent = await sent_message_ids(self.repository.store, conversation)
                missing = [m for m in pending if m.message_id not in sent]
                if missing:
                    log.info("%s %s: sending %d lost message(s)", self.kind, state.id, len(missing))
                    await self._dispatch(state, missing)
            except Exception:
                log.exception("%s %s: recovery failed", self.kind, state.id)

    @property
    def kind(self) -> Kind:
        """``task`` or ``run``."""
        return self.rules.kind

    def stream(self, namespace: str, key: str) -> str:
        """The stream of the task or run ``key`` of ``namespace``."""
        return self.streams.of(self.kind, namespace, key)

    async def _dispatch(self, state: S, mail: list[Mail]) -> None:
        """Send ``mail``, then decide on what it did not deliver."""
        replies = await self.mailer.send_all(
            mail,
            sender=f"{self.kind}:{state.id}",
            conversation_id=state.id,
            namespace=state.namespace,
            protocol=self.rules.protocol,
            correlation=state.id,
        )
        undelivered = self.rules.undelivered(mail, replies)
        if undelivered:
            await self.decide(state.id, state.namespace, undelivered)
