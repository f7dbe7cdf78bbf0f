"""The ``send`` command: validate → resolve receivers → decide in the conversation → deliver.

Recording goes through the conversation's :class:`Repository`: ``message.sent`` (or
``message.rejected``, as :func:`parley.aggregates.conversation.decide` says) is appended at
the conversation's expected version, and a lost race reads the stream again and decides
again. Its event id is derived from the namespace, conversation and message id, so a retried
send is stored once; a send whose ``message_id`` the conversation already holds answers the
recorded outcome (re-publishing deliveries no runtime took yet).

Defaults: a new conversation takes its first message's id as its id (so a retry without a
conversation id lands in the same one); a reply without ``conversation_id`` joins the
conversation of the message it answers.
"""

import contextlib
import logging

import msgspec

from parley.aggregates import conversation
from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import Record
from parley.aggregates.conversation import Refused
from parley.aggregates.conversation import is_agent
from parley.aggregates.conversation import knows
from parley.aggregates.decision import Context
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import SendMessage
from parley.contracts.acl import tail_header
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.eventstore import EventStore
from parley.eventstore.locks import KeyedLock
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Repository
from parley.kit.errors import error_body_for
from parley.kit.telemetry import current_traceparent
from parley.messaging import domain
from parley.messaging import replies
from parley.messaging.directory import Directory
from parley.messaging.dispatch import Dispatch
from parley.messaging.events import decided_event
from parley.messaging.waiting import Replies

__all__ = ["Messaging", "reply_for_error"]

log = logging.getLogger(__name__)

RETRIES = 32
"""Appends to a crowded conversation (agents' `message.delivered` interleave with the replies
recorded here) decide again this often before giving up."""
JITTER = (0.001, 0.01)
"""The random pause before deciding again: up to 1 ms, doubling, at most 10 ms (short: the
conversation's lock is held meanwhile, and the other replies to it wait)."""
_CATCH_UP_S = 1.0
_CONFLICT = (
    "the conversation kept changing while the message was recorded; retry with the same message_id"
)
_encode = msgspec.json.Encoder().encode


class Messaging:
    """Records and delivers messages; keeps folded conversations between sends."""

    def __init__(
        self,
        store: EventStore,
        directory: Directory,
        dispatch: Dispatch,
        replies: Replies,
        cached: int,
    ) -> None:
        self.store, self.directory, self.dispatch = store, directory, dispatch
        self.replies = replies
        self.conversations = Repository(store, conversation.evolve, cache_size=cached)
        # the deliveries runtimes record: folded as they arrive, so a reply finds them cached
        directory.observers.append(self.conversations.observe)
        self._locks = KeyedLock()

    async def send(self, cmd: SendMessage) -> MessageReply:
        """Record ``cmd.message`` and deliver it; with ``wait_seconds``, wait for a reply."""
        out, ns = cmd.message, cmd.namespace
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, 2.0)
        domain.validate(out)
        await self._check_sender(out.sender, ns)
        message_id = out.message_id or new_id()
        conversation_id = (
            out.conversation_id
            or self.directory.conversation_of_message(ns, message_id)
            or await self._replied_conversation(out, ns)
            or message_id
        )
        traceparent = cmd.traceparent or current_traceparent()  # the caller's, else this span
        waiter = None
        if cmd.wait_seconds:
            waiter = self.replies.listen(message_id, conversation_id)
        try:
            fresh = out.message_id is None and conversation_id == message_id
            message, state, replayed, tail = await self._record(
                cmd, message_id, conversation_id, fresh, traceparent
            )
            if message.in_reply_to:  # recorded: its waiters need not wait for the queueing
                original = state.original(message.in_reply_to)
                await self.dispatch.outbox.announce(
                    message, original.message_id if original else None, _encode(message)
                )
            reply = await self.dispatch.deliver(message, state, replayed, traceparent, tail)
            if waiter is not None:
                answer = state.first_reply.get(message_id)
                if answer is None:
                    answer = await waiter.wait(domain.wait_seconds(cmd, message))
                reply = msgspec.structs.replace(reply, reply=answer, timed_out=answer is None)
            return reply
        finally:
            if waiter is not None:
                waiter.close()

    async def _record(
        self,
        cmd: SendMessage,
        message_id: str,
        conversation_id: str,
        fresh: bool,
        traceparent: str | None,
    ) -> tuple[AclMessage, Conversation, bool, str | None]:
        """Record the message (or its refusal); the message, its conversation with it folded
        in, whether an earlier send recorded it, and the conversation's end as this record
        left it (:data:`~parley.contracts.acl.TAIL_HEADER`; None when nothing was appended).

        ``fresh``: the conversation is named after a message id minted here, so it cannot
        exist yet and is not read (the append at version 0 would catch it if it did)."""
        stream = self.directory.conversation_stream(cmd.namespace, conversation_id)
        built: list[AclMessage] = []
        effects: list[conversation.Effect] = []
        ids: list[str] = []

        def decide(state: Conversation | None) -> list[NewEvent]:
            _check_namespace(state, cmd.namespace)
            if not built and not knows(state, message_id):
                built.append(self._compose(cmd, message_id, conversation_id))
            message = built[0] if built else None
            command = Record(message_id=message_id, message=message, taken_by=cmd.taken_by)
            decision = conversation.decide(state, command, Context())
            effects[:] = decision.effects
            events = [decided_event(cmd, state, d, traceparent) for d in decision.events]
            ids[:] = [e.id for e in events]
            return events

        async with self._locks.hold(stream):
            if fresh:
                self.conversations.remember(stream, Loaded(None, 0, 0))
            outcome = await self.conversations.execute(
                stream, decide, retries=RETRIES, jitter=JITTER[0], jitter_cap=JITTER[1]
            )
            (effect,) = effects
            if isinstance(effect, Refused):
                looping = effect.refusal.code is ErrorCode.HOP_LIMIT_EXCEEDED
                if effect.new and looping:  # the sending agent hears why at once
                    await self.dispatch.notify_sender(
                        effect.message, effect.message.sender, effect.refusal
                    )
                raise replies.refusal_error(effect.message, effect.refusal)
            state = outcome.state
            if effect.replayed:  # the copy may miss what became of its deliveries since
                state = (await self.conversations.load(stream, fresh=True)).state
        assert state is not None
        tail = tail_header(outcome.version, outcome.position, ids[-1]) if outcome.appended else None
        return effect.message, state, effect.replayed, tail

    def _compose(self, cmd: SendMessage, message_id: str, conversation_id: str) -> AclMessage:
        out, ns = cmd.message, cmd.namespace
        capable = self.directory.with_capability(ns, out.capability) if out.capability else []
        receivers = domain.route(out, ns, capable, self.directory.load)
        return domain.compose(cmd, message_id, conversation_id, receivers)

    async def _check_sender(self, sender: str, ns: str) -> None:
        if not is_agent(sender) or self.directory.get(sender, ns) is not None:
            return
        await self._catch_up()
        if self.directory.get(sender, ns) is None:
            raise replies.SendRefused(
                ErrorCode.AGENT_NOT_FOUND,
                f"the sender {sender} is no agent of namespace {ns}; send as an agent of the "
                "namespace or as a `user:<name>` principal",
                {"agent_id": sender},
            )

    async def _replied_conversation(self, out: OutgoingMessage, ns: str) -> str | None:
        if out.in_reply_to is None:
            return None
        found = self.directory.conversation_of(ns, out.in_reply_to)
        if found is None:
            await self._catch_up()
            found = self.directory.conversation_of(ns, out.in_reply_to)
        return found

    async def _catch_up(self) -> None:
        """Let the directory reach the store's newest event (bounded)."""
        with contextlib.suppress(Exception):
            await self.directory.wait_for(await self.store.last_position(), _CATCH_UP_S)


def _check_namespace(state: Conversation | None, namespace: str) -> None:
    """Refuse to add to a conversation of another namespace.

    Streams are scoped by namespace, so this only happens when a ``default`` conversation id
    ``<namespace>_<id>`` meets that namespace's ``<id>``, or in a stream stored before.

    Raises:
        ParleyError: ``CONCURRENCY_CONFLICT``: the conversation id is taken.
    """
    if state is None:
        return
    first = next(iter(state.messages.values()), None) or next(
        (r.message for r in state.rejected.values()), None
    )
    if first is not None and first.namespace != namespace:
        raise ParleyError(
            ErrorCode.CONCURRENCY_CONFLICT,
            f"conversation id {state.id!r} is taken; choose another",
        )


def reply_for_error(exc: Exception) -> MessageReply:
    """The error reply for an exception raised while handling a send."""
    base = exc.reply if isinstance(exc, replies.SendRefused) and exc.reply else None
    body = error_body_for(exc, conflict_message=_CONFLICT, log=log)
    return msgspec.structs.replace(base or MessageReply(ok=False), ok=False, error=body)
