"""A conversation folded from its stream ``conversation-<id>``, and the protocol rules.

Pure: no I/O. :func:`evolve` folds one recorded event; :func:`check` says whether a new
message may join the conversation (FIPA protocols, reply-by, hop limit). The fold updates the
state in place (a conversation can hold thousands of messages; copying it per event would
make a fold quadratic): a state belongs to one caller, which folds and decides on it.
"""

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from parley.contracts.acl import (
    HOP_LIMIT,
    PROTOCOL_REPLIES,
    AclMessage,
    MessageDelivered,
    MessageFailed,
    MessageRejected,
    MessageSent,
    Performative,
)
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode

__all__ = ["Conversation", "Refusal", "check", "evolve", "is_agent"]


def is_agent(principal: str) -> bool:
    """Whether ``principal`` is an agent id (not ``user:``, ``task:`` or ``run:``)."""
    return ":" not in principal


@dataclass(slots=True)
class Conversation:
    """Every message of one conversation and what became of it."""

    id: str
    version: int = 0
    """Stream version of the last folded event."""
    position: int = 0
    """Global position of the last folded event."""
    messages: dict[str, AclMessage] = field(default_factory=dict)
    """Recorded (`message.sent`) messages by id."""
    sent_at: dict[str, int] = field(default_factory=dict)
    """Message id → position of its `message.sent`."""
    keys: dict[str, str] = field(default_factory=dict)
    """What an `in-reply-to` may name (a message id or its `reply-with`) → message id."""
    failed: dict[str, dict[str, MessageFailed]] = field(default_factory=dict)
    """Message id → receiver → why it could not be reached."""
    delivered: dict[str, set[str]] = field(default_factory=dict)
    """Message id → receivers whose runtime took it."""
    rejected: dict[str, MessageRejected] = field(default_factory=dict)
    """Refused messages by id (a retry gets the same refusal)."""
    first_reply: dict[str, AclMessage] = field(default_factory=dict)
    """Message id → the first recorded reply to it."""

    def original(self, in_reply_to: str) -> AclMessage | None:
        """The recorded message an ``in-reply-to`` value names, if any."""
        message_id = self.keys.get(in_reply_to)
        return self.messages.get(message_id) if message_id is not None else None


def evolve(state: Conversation | None, event: Event) -> Conversation:
    """Fold one recorded event of ``conversation-<id>``; unknown types only bump the version."""
    conversation = state if state is not None else Conversation(id=event.subject)
    conversation.version, conversation.position = event.version, event.position
    match event.type:
        case "message.sent":
            message = msgspec.convert(event.data, MessageSent).message
            conversation.messages[message.message_id] = message
            conversation.sent_at[message.message_id] = event.position
            conversation.keys[message.message_id] = message.message_id
            if message.reply_with:
                conversation.keys.setdefault(message.reply_with, message.message_id)
            if message.in_reply_to:
                original = conversation.keys.get(message.in_reply_to, message.in_reply_to)
                conversation.first_reply.setdefault(original, message)
        case "message.failed":
            failure = msgspec.convert(event.data, MessageFailed)
            conversation.failed.setdefault(failure.message_id, {})[failure.receiver] = failure
        case "message.delivered":
            taken = msgspec.convert(event.data, MessageDelivered)
            conversation.delivered.setdefault(taken.message_id, set()).add(taken.receiver)
        case "message.rejected":
            refused = msgspec.convert(event.data, MessageRejected)
            conversation.rejected[refused.message.message_id] = refused
    return conversation


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
