"""What the contract net and group runs share: decide-and-append, and sending ACL messages.

:func:`apply` folds a batch of commands through an aggregate's pure ``decide`` and appends
all the events at once, at the stream's expected version (the kernel reloads and decides
again when another writer got there first). The messages to send come back with the
outcome and go out only after the append: the events are the truth, a message is its
consequence. Their ids are recorded in the events, so a restarted process can tell (from the
conversation's stream) which ones never left and send them then.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

import msgspec
import nats.errors
from nats.aio.client import Client

from parley.contracts import subjects
from parley.contracts.acl import (
    SERVICE as MESSAGING,
)
from parley.contracts.acl import (
    MessageReply,
    OutgoingMessage,
    SendMessage,
    conversation_stream,
)
from parley.contracts.envelope import Event, NewEvent, utcnow
from parley.contracts.ids import new_id
from parley.eventstore import EventStore
from parley.eventstore.kernel import Loaded, Outcome, execute
from parley.tasks.task import Mail
from parley.tasks.watch import Kind, Watch

__all__ = [
    "Conversations",
    "KeyedLocks",
    "Mailer",
    "apply",
    "failed_deliveries",
    "sent_message_ids",
]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(MessageReply).decode


class _Conversation(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def namespace(self) -> str: ...


S = TypeVar("S", bound=_Conversation)


class _Decision(Protocol):
    events: list[tuple[str, msgspec.Struct]]
    mail: list[Mail]


async def apply(
    store: EventStore,
    stream: str,
    *,
    evolve: Callable[[Any, Event], Any],
    decide: Callable[[Any, Any, Any, Callable[[], str]], _Decision],
    commands: Sequence[Any],
    subject: str,
    namespace: str,
    loaded: Loaded[Any] | None = None,
    correlation: str | None = None,
    traceparent: str | None = None,
) -> tuple[Outcome[Any], list[Mail]]:
    """Decide ``commands`` in order on the stream's state and append every event at once.

    Returns:
        The outcome (new state, version, position, events appended) and the messages to send.
    """
    mail: list[Mail] = []

    def decide_all(state: Any) -> list[NewEvent]:
        mail.clear()
        now = utcnow()
        events: list[NewEvent] = []
        for command in commands:
            decision = decide(state, command, now, new_id)
            for kind, payload in decision.events:
                new = NewEvent(
                    type=kind,
                    subject=subject,
                    data=msgspec.to_builtins(payload),
                    namespace=namespace,
                    source="/parley/tasks",
                    correlationid=correlation,
                    traceparent=traceparent,
                )
                events.append(new)
                version = (state.version if state is not None else 0) + 1
                state = evolve(state, Event.record(new, stream=stream, version=version))
            mail.extend(decision.mail)
        return events

    outcome = await execute(store, stream, decide_all, evolve, loaded=loaded)
    return outcome, list(mail)


async def sent_message_ids(store: EventStore, conversation_id: str) -> set[str]:
    """Ids of the messages recorded in a conversation."""
    ids: set[str] = set()
    for event in await store.read(conversation_stream(conversation_id)):
        if event.type == "message.sent":
            message = event.data.get("message") or {}
            if isinstance(message.get("message_id"), str):
                ids.add(message["message_id"])
    return ids


class Mailer:
    """Sends a task's or run's ACL messages through the messaging service."""

    def __init__(self, nc: Client, timeout: float) -> None:
        self.nc, self.timeout = nc, timeout

    async def send(
        self,
        mail: Mail,
        *,
        sender: str,
        conversation_id: str,
        namespace: str,
        protocol: Literal["fipa-contract-net", "fipa-request"],
        correlation: str | None = None,
    ) -> MessageReply | None:
        """Send one message; its reply, or None when messaging could not be reached."""
        content = mail.content
        message = OutgoingMessage(
            performative=mail.performative,
            sender=sender,
            receivers=list(mail.receivers),
            content=content,
            language=None if isinstance(content, str) else "json",
            protocol=protocol,
            conversation_id=conversation_id,
            reply_with=mail.message_id,
            in_reply_to=mail.in_reply_to,
            reply_by=mail.reply_by,
            message_id=mail.message_id,
        )
        command = SendMessage(message=message, namespace=namespace, request_id=correlation)
        try:
            msg = await self.nc.request(
                subjects.cmd(MESSAGING, "send"), _encode(command), timeout=self.timeout
            )
            reply = _decode_reply(msg.data)
        except (nats.errors.Error, TimeoutError, msgspec.DecodeError) as exc:
            log.warning(
                "%s %s to %s not sent: %r",
                mail.performative,
                mail.message_id,
                list(mail.receivers),
                exc,
            )
            return None
        if not reply.ok and reply.error is not None:
            log.warning(
                "%s %s to %s refused: %s %s",
                mail.performative.value,
                mail.message_id,
                list(mail.receivers),
                reply.error.code,
                reply.error.message,
            )
        return reply

    async def send_all(
        self,
        mail: Sequence[Mail],
        *,
        sender: str,
        conversation_id: str,
        namespace: str,
        protocol: Literal["fipa-contract-net", "fipa-request"],
        correlation: str | None = None,
    ) -> list[MessageReply | None]:
        """Send every message at once; their replies in order."""
        return list(
            await asyncio.gather(
                *(
                    self.send(
                        m,
                        sender=sender,
                        conversation_id=conversation_id,
                        namespace=namespace,
                        protocol=protocol,
                        correlation=correlation,
                    )
                    for m in mail
                )
            )
        )


def failed_deliveries(reply: MessageReply | None, receivers: Sequence[str]) -> dict[str, str]:
    """Receivers a send did not reach, with why (all of them when the send failed)."""
    if reply is None:
        return dict.fromkeys(receivers, "the messaging service is unavailable")
    if not reply.ok:
        why = f"{reply.error.code}: {reply.error.message}" if reply.error else "refused"
        return dict.fromkeys(receivers, why)
    return {
        d.receiver: f"{d.code or 'failed'}: {d.reason or 'not delivered'}"
        for d in reply.deliveries
        if d.status == "failed"
    }


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it.

    A task's decisions in one process run one at a time (no self-inflicted conflicts when
    its proposals arrive together); across processes the expected version serialises them.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock."""
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._locks.pop(key, None)


class Conversations(Generic[S]):
    """Decide, append, then send: the shell of one kind of conversation (tasks or group runs).

    Decisions on one conversation run one at a time in this process (:class:`KeyedLocks`);
    subclasses say what to decide when messages are not delivered (:meth:`_undelivered`).
    """

    def __init__(
        self,
        store: EventStore,
        watch: Watch,
        mailer: Mailer,
        *,
        kind: Kind,
        stream: Callable[[str], str],
        evolve: Callable[[Any, Event], Any],
        decide: Callable[[Any, Any, Any, Callable[[], str]], _Decision],
        protocol: Literal["fipa-contract-net", "fipa-request"],
    ) -> None:
        self.store, self.watch, self.mailer = store, watch, mailer
        self._kind, self._stream, self._evolve, self._decider = kind, stream, evolve, decide
        self._protocol: Literal["fipa-contract-net", "fipa-request"] = protocol
        self._locks = KeyedLocks()

    async def _decide(
        self,
        key: str,
        namespace: str,
        commands: Sequence[Any],
        *,
        loaded: Loaded[S] | None = None,
        correlation: str | None = None,
        traceparent: str | None = None,
    ) -> Outcome[S]:
        async with self._locks.hold(key):
            outcome, mail = await apply(
                self.store,
                self._stream(key),
                evolve=self._evolve,
                decide=self._decider,
                commands=commands,
                subject=key,
                namespace=namespace,
                loaded=loaded or self.watch.cached(self._kind, key),
                correlation=correlation,
                traceparent=traceparent,
            )
        if mail:
            await self._dispatch(outcome.state, mail)
        return outcome

    async def _dispatch(self, state: S, mail: list[Mail]) -> None:
        replies = await self.mailer.send_all(
            mail,
            sender=f"{self._kind}:{state.id}",
            conversation_id=state.id,
            namespace=state.namespace,
            protocol=self._protocol,
            correlation=state.id,
        )
        await self._undelivered(state, mail, replies)

    async def _undelivered(
        self, state: S, mail: list[Mail], replies: list[MessageReply | None]
    ) -> None:
        """Decide on what ``mail`` did not deliver (``replies`` in the same order)."""
        raise NotImplementedError

    async def _resend(self, state: S, pending: list[Mail], what: str) -> None:
        """Send the ``pending`` messages the conversation's stream has no record of."""
        try:
            sent = await sent_message_ids(self.store, state.id)
            missing = [m for m in pending if m.message_id not in sent]
            if missing:
                log.info("%s %s: sending %d lost %s", self._kind, state.id, len(missing), what)
                await self._dispatch(state, missing)
        except Exception:
            log.exception("%s %s: recovery failed", self._kind, state.id)
