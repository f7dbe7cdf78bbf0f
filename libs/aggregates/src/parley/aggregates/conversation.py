"""A conversation, folded from its stream ``conversation-<id>``, and the protocol rules.

Its stream is :func:`~parley.contracts.acl.conversation_stream` (scoped by namespace).

The messaging service decides on it; the edge's messages projection shows it. One fold, so
the two never disagree.

Pure: no I/O. :func:`evolve` folds one recorded event; :func:`check` says whether a new
message may join the conversation (FIPA protocols, reply-by, hop limit); :func:`decide`
records a message (``message.sent``) or refuses it (``message.rejected``); :func:`notice`
writes the platform's failure notice to an agent whose message did not arrive.

The fold updates the state in place (a conversation can hold thousands of messages; copying
it per event would make a fold quadratic): a state belongs to one caller, which folds and
decides on it.
"""

import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import cast

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.fold import kinds
from parley.contracts.acl import EVENT_TYPES
from parley.contracts.acl import HOP_LIMIT
from parley.contracts.acl import PROTOCOL_REPLIES
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageDelivered
from parley.contracts.acl import MessageFailed
from parley.contracts.acl import MessageRejected
from parley.contracts.acl import MessageSent
from parley.contracts.acl import Performative
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode

__all__ = [
    "CATEGORY",
    "FOLDS",
    "SYSTEM",
    "Conversation",
    "Effect",
    "Payload",
    "Receipt",
    "Record",
    "Recorded",
    "Refusal",
    "Refused",
    "check",
    "decide",
    "event_id",
    "evolve",
    "is_agent",
    "knows",
    "notice",
    "payload",
]

CATEGORY = conversation_stream.category
"""The stream category this aggregate folds (``conversation-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "message")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

SYSTEM = "user:parley"
"""The principal the platform's own notices come from."""
_IDS = uuid.UUID("0b9c7f3e-8d21-4e5a-9a61-3c2f1d7e6b54")


def is_agent(principal: str) -> bool:
    """Whether ``principal`` is an agent id (not ``user:``, ``task:`` or ``run:``)."""
    return ":" not in principal


def event_id(namespace: str, conversation_id: str, *parts: str) -> str:
    """A stable id (for an event or a notice) derived from where it belongs: a retried
    send derives the same one, so the store keeps it once."""
    return str(uuid.uuid5(_IDS, "/".join((namespace, conversation_id, *parts))))


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one delivery last: a runtime took it, or it failed."""

    at: datetime
    """When it was taken or failed (the event's time)."""
    taken: MessageDelivered | None = None
    failed: MessageFailed | None = None


@dataclass(slots=True)
class Conversation:
    """Every message of one conversation and what became of it."""

    id: str
    version: int = 0
    """Stream version of the last folded event."""
    position: int = 0
    """Global position of the last folded event."""
    messages: dict[str, AclMessage] = field(default_factory=dict)
    """Recorded (`message.sent`) messages by id, in recorded order."""
    sent_at: dict[str, int] = field(default_factory=dict)
    """Message id → position of its `message.sent`."""
    keys: dict[str, str] = field(default_factory=dict)
    """What an `in-reply-to` may name (a message id or its `reply-with`) → message id."""
    failed: dict[str, dict[str, MessageFailed]] = field(default_factory=dict)
    """Message id → receiver → why it could not be reached."""
    delivered: dict[str, set[str]] = field(default_factory=dict)
    """Message id → receivers whose runtime took it."""
    receipts: dict[str, dict[str, Receipt]] = field(default_factory=dict)
    """Message id → receiver → the last word on its delivery (taken or failed, and when)."""
    rejected: dict[str, MessageRejected] = field(default_factory=dict)
    """Refused messages by id, in refused order (a retry gets the same refusal)."""
    rejected_at: dict[str, int] = field(default_factory=dict)
    """Refused message id → position of its `message.rejected`."""
    first_reply: dict[str, AclMessage] = field(default_factory=dict)
    """Message id → the first recorded reply to it."""

    def original(self, in_reply_to: str) -> AclMessage | None:
        """The recorded message an ``in-reply-to`` value names, if any."""
        message_id = self.keys.get(in_reply_to)
        return self.messages.get(message_id) if message_id is not None else None


Payload = MessageSent | MessageDelivered | MessageFailed | MessageRejected
"""What a conversation's events carry."""


def payload(event: Event) -> Payload | None:
    """The typed payload of a conversation event (None for a type this code does not know):
    the one place ``message.*`` events are read, for this fold and for views across
    conversations (the messaging directory's agent load)."""
    payload_type = EVENT_TYPES.get(event.type)
    if payload_type is None:
        return None
    return cast(Payload, msgspec.convert(event.data, payload_type))


def evolve(state: Conversation | None, event: Event) -> Conversation:
    """Fold one recorded event of ``conversation-<id>``; unknown types only bump the version."""
    conversation = state if state is not None else Conversation(id=event.subject)
    conversation.version, conversation.position = event.version, event.position
    match payload(event):
        case MessageSent(message=message, receipt=receipt):
            if message.message_id in conversation.messages:
                return conversation  # stored twice by racing processes: the first one counts
            if receipt is not None:
                _taken(conversation, receipt, event.time)
            conversation.messages[message.message_id] = message
            conversation.sent_at[message.message_id] = event.position
            conversation.keys[message.message_id] = message.message_id
            if message.reply_with:
                conversation.keys.setdefault(message.reply_with, message.message_id)
            if message.in_reply_to:
                original = conversation.keys.get(message.in_reply_to, message.in_reply_to)
                conversation.first_reply.setdefault(original, message)
        case MessageFailed() as failure:
            conversation.failed.setdefault(failure.message_id, {})[failure.receiver] = failure
            conversation.receipts.setdefault(failure.message_id, {})[failure.receiver] = Receipt(
                at=event.time, failed=failure
            )
        case MessageDelivered() as taken:
            _taken(conversation, taken, event.time)
        case MessageRejected() as refused:
            conversation.rejected.setdefault(refused.message.message_id, refused)
            conversation.rejected_at.setdefault(refused.message.message_id, event.position)
    return conversation


def _taken(conversation: Conversation, taken: MessageDelivered, at: datetime) -> None:
    """A runtime took a message (its ``message.delivered``, or a reply's receipt)."""
    conversation.delivered.setdefault(taken.message_id, set()).add(taken.receiver)
    conversation.receipts.setdefault(taken.message_id, {})[taken.receiver] = Receipt(
        at=at, taken=taken
    )


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """Why a message may not join its conversation."""

    code: ErrorCode
    reason: str


def check(conversation: Conversation | None, message: AclMessage, now: datetime) -> Refusal | None:
    """Whether ``message`` may be recorded in ``conversation`` (None) or why not.

    A reply (``in-reply-to``) must answer a recorded message of the conversation, come from
    one of that message's receivers (or its ``reply-to``), carry a performative its protocol
    allows (``PROTOCOL_REPLIES``; ``not-understood`` answers anything; ``cancel`` may follow
    anything its sender started) and arrive before the original's ``reply-by``.
    """
    if message.hops > HOP_LIMIT:
        return Refusal(
            code=ErrorCode.HOP_LIMIT_EXCEEDED,
            reason=f"the message is hop {message.hops} of a causal chain; at most {HOP_LIMIT} "
            "agent-caused messages may follow each other (a loop of agents?)",
        )
    if message.in_reply_to is None:
        return None
    original = conversation.original(message.in_reply_to) if conversation else None
    if original is None:
        return _violation(
            f"in-reply-to {message.in_reply_to!r} names no message of conversation "
            f"{message.conversation_id!r}; a reply must answer a recorded message"
        )
    performative, asked = message.performative, original.performative
    if performative is Performative.CANCEL:
        if message.sender != original.sender:
            return _violation(
                f"only {original.sender}, who sent {original.message_id}, may cancel it"
            )
        return None
    if message.sender not in original.receivers and message.sender not in original.reply_to:
        return _violation(
            f"{message.sender} did not receive {original.message_id}; only its receivers "
            "may answer it"
        )
    allowed = PROTOCOL_REPLIES.get(asked, frozenset())
    if performative is not Performative.NOT_UNDERSTOOD and performative not in allowed:
        if not allowed:
            return _violation(f"{asked.value} expects no reply; only not-understood may answer it")
        expected = ", ".join(sorted(p.value for p in allowed | {Performative.NOT_UNDERSTOOD}))
        return _violation(
            f"{performative.value} cannot answer {asked.value}; expected one of {expected}"
        )
    if original.reply_by is not None and now > original.reply_by:
        return Refusal(
            code=ErrorCode.MESSAGE_EXPIRED,
            reason=f"{original.message_id} asked for a reply by "
            f"{original.reply_by.isoformat()}; this reply came too late",
        )
    return None


def _violation(reason: str) -> Refusal:
    return Refusal(code=ErrorCode.PROTOCOL_VIOLATION, reason=reason)


# --- the command ---------------------------------------------------------------------------


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Record message ``message_id`` in its conversation.

    ``message`` is the message to record; it may be None only when the conversation already
    holds ``message_id`` (a retried send answers what was recorded, and builds nothing).
    """

    message_id: str
    message: AclMessage | None = None
    taken_by: str | None = None
    """The worker that took the message this one answers, when the answering agent's
    runtime worked the answer out at once: the reply records that delivery too."""


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """Effect: the message is recorded; ``replayed`` when an earlier send recorded it."""

    message: AclMessage
    replayed: bool = False


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    """Effect: the message is refused; ``new`` when this decision records the refusal."""

    message: AclMessage
    refusal: Refusal
    new: bool = False


Effect = Recorded | Refused


def knows(state: Conversation | None, message_id: str) -> bool:
    """Whether the conversation recorded or refused ``message_id`` already."""
    return state is not None and (message_id in state.messages or message_id in state.rejected)


def decide(state: Conversation | None, command: Record, ctx: Context) -> Decision[Effect]:
    """Record a message (``message.sent``), or refuse it (``message.rejected``) when
    :func:`check` says so; a message already recorded or refused gets the same outcome and
    appends nothing.

    Raises:
        ValueError: If the command carries no message and the conversation holds none by
            its id.
    """
    if state is not None:
        if (recorded := state.messages.get(command.message_id)) is not None:
            return Decision(effects=[Recorded(message=recorded, replayed=True)])
        if (refused := state.rejected.get(command.message_id)) is not None:
            again = Refusal(code=ErrorCode(refused.code), reason=refused.reason)
            return Decision(effects=[Refused(message=refused.message, refusal=again)])
    message = command.message
    if message is None:
        raise ValueError(f"message {command.message_id} is not in the conversation: give it")
    refusal = check(state, message, message.sent_at or ctx.now)
    events: Decided
    if refusal is not None:
        rejected = MessageRejected(message=message, code=refusal.code.value, reason=refusal.reason)
        events = [("message.rejected", rejected)]
        return Decision(events, [Refused(message=message, refusal=refusal, new=True)])
    receipt = _receipt(state, message, command.taken_by)
    events = [("message.sent", MessageSent(message=message, receipt=receipt))]
    return Decision(events, [Recorded(message=message)])


def _receipt(
    state: Conversation | None, reply: AclMessage, taken_by: str | None
) -> MessageDelivered | None:
    """The delivery a reply records of the message it answers: when its sender's runtime
    took that message (``taken_by``) and no receipt of it is recorded yet."""
    if taken_by is None or state is None or not is_agent(reply.sender):
        return None
    original = state.original(reply.in_reply_to or "")
    if original is None or reply.sender not in original.receivers:
        return None
    if reply.sender in state.receipts.get(original.message_id, {}):
        return None
    return MessageDelivered(message_id=original.message_id, receiver=reply.sender, worker=taken_by)


def notice(message: AclMessage, receiver: str, refusal: Refusal, now: datetime) -> AclMessage:
    """The system ``failure`` telling ``message``'s sender that it did not reach ``receiver``.

    It comes from :data:`SYSTEM`, answers ``message`` in its conversation (content
    ``{"code", "reason", "receiver"}``) and has a stable id, so a retried send notices once.
    """
    return AclMessage(
        message_id=event_id(
            message.namespace, message.conversation_id, message.message_id, "notice", receiver
        ),
        performative=Performative.FAILURE,
        sender=SYSTEM,
        receivers=[message.sender],
        conversation_id=message.conversation_id,
        content={"code": refusal.code.value, "reason": refusal.reason, "receiver": receiver},
        language="json",
        protocol=message.protocol,
        in_reply_to=message.reply_with or message.message_id,
        namespace=message.namespace,
        hops=message.hops + 1,
        sent_at=now,
    )
