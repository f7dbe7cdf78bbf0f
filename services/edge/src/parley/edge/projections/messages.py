"""The messages projection: every FIPA-ACL message with what became of each delivery.

It folds ``conversation-`` streams (one per namespace and conversation id) with the
conversation aggregate's own fold (:func:`parley.aggregates.conversation.evolve`, the one
the messaging service decides on)
and only maps the folded conversations to views. History lists recorded messages in the
order they were recorded (global position); a refused message is readable by id with its
``rejection``.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import evolve
from parley.contracts.acl import AclMessage
from parley.contracts.envelope import Event
from parley.edge.projections._base import FoldingProjection
from parley.eventstore import EventStore

__all__ = ["DeliveryView", "MessageView", "MessagesProjection", "Rejection"]


class DeliveryView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One receiver's delivery."""

    receiver: str
    """The receiving principal."""
    status: Literal["queued", "delivered", "failed", "recorded"]
    """`queued` in the inbox, `delivered` (a runtime took it), `failed`, or `recorded`
    (a `user:` receiver: nothing to deliver)."""
    code: str | None = None
    """Why it failed (an error code)."""
    reason: str | None = None
    """Why it failed, in words."""
    at: datetime | None = None
    """When it was taken or failed."""
    worker: str | None = None
    """The runtime process that took it."""


class Rejection(msgspec.Struct, kw_only=True):
    """Why a message was refused."""

    code: str
    reason: str


class MessageView(AclMessage, kw_only=True, omit_defaults=True):
    """A message as the API shows it: the ACL message plus its deliveries."""

    status: Literal["recorded", "rejected"] = "recorded"
    """`rejected`: refused by its conversation's protocol, reply-by or hop limit."""
    deliveries: list[DeliveryView] = []
    """Each receiver's delivery, in receiver order."""
    rejection: Rejection | None = None
    """Why the message was refused."""
    position: int = 0
    """Global position of the event that recorded it."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """Where a message's first recording (or refusal) lives."""

    conversation: Conversation
    message_id: str
    rejected: bool = False


class MessagesProjection(FoldingProjection):
    """Messages by id, by conversation, and in recorded order."""

    prefix = "conversation-"
    name = "messages-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._conversations: dict[str, Conversation] = {}
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._order: list[_Entry] = []
        self._by_conversation: dict[tuple[str, str], list[_Entry]] = {}

    # --- reads -------------------------------------------------------------------------

    def get(self, namespace: str, message_id: str) -> MessageView | None:
        """One message (recorded or rejected) of ``namespace``."""
        entry = self._entries.get((namespace, message_id))
        return _view(entry) if entry is not None else None

    def has(self, namespace: str, message_id: str) -> bool:
        """Whether the message was recorded or rejected."""
        return (namespace, message_id) in self._entries

    def history(
        self,
        namespace: str,
        *,
        conversation_id: str | None = None,
        agent_ids: frozenset[str] = frozenset(),
        performatives: frozenset[str] = frozenset(),
    ) -> list[tuple[int, AclMessage]]:
        """Recorded messages of ``namespace`` in recorded order, as (position, message)."""
        if conversation_id is not None:
            entries = self._by_conversation.get((namespace, conversation_id), [])
        else:
            entries = self._order
        found = []
        for entry in entries:
            if entry.rejected:
                continue
            message = entry.conversation.messages[entry.message_id]
            if message.namespace != namespace:
                continue
            if performatives and message.performative.value not in performatives:
                continue
            if agent_ids and message.sender not in agent_ids:
                if agent_ids.isdisjoint(message.receivers):
                    continue
            found.append((entry.conversation.sent_at[entry.message_id], message))
        return found

    # --- the fold ----------------------------------------------------------------------

    def _fold(self, event: Event) -> None:
        conversation = self._conversations.get(event.stream)
        recorded = len(conversation.messages) if conversation is not None else 0
        refused = len(conversation.rejected) if conversation is not None else 0
        conversation = self._conversations[event.stream] = evolve(conversation, event)
        if len(conversation.messages) > recorded:  # a new message.sent: the newest key
            self._add(event.namespace, _Entry(conversation, next(reversed(conversation.messages))))
        elif len(conversation.rejected) > refused:
            message_id = next(reversed(conversation.rejected))
            self._add(event.namespace, _Entry(conversation, message_id, rejected=True))

    def _add(self, namespace: str, entry: _Entry) -> None:
        key = (namespace, entry.message_id)
        if key in self._entries:  # recorded before (in another conversation): the first counts
            return
        self._entries[key] = entry
        self._order.append(entry)
        conversation = (namespace, entry.conversation.id)
        self._by_conversation.setdefault(conversation, []).append(entry)


def _view(entry: _Entry) -> MessageView:
    conversation, message_id = entry.conversation, entry.message_id
    if entry.rejected:
        refused = conversation.rejected[message_id]
        return _message_view(
            refused.message,
            status="rejected",
            rejection=Rejection(code=refused.code, reason=refused.reason),
            position=conversation.rejected_at[message_id],
        )
    message = conversation.messages[message_id]
    return _message_view(
        message,
        deliveries=_deliveries(message, conversation),
        position=conversation.sent_at[message_id],
    )


def _deliveries(message: AclMessage, conversation: Conversation) -> list[DeliveryView]:
    """Each receiver's delivery in receiver order, then any other receipt of the message."""
    receipts = conversation.receipts.get(message.message_id, {})
    views: dict[str, DeliveryView] = {}
    for receiver in message.receivers:
        status: Literal["queued", "recorded"] = (
            "recorded" if receiver.startswith("user:") else "queued"
        )
        views[receiver] = DeliveryView(receiver=receiver, status=status)
    for receiver, receipt in receipts.items():
        if receipt.taken is not None:
            views[receiver] = DeliveryView(
                receiver=receiver, status="delivered", at=receipt.at, worker=receipt.taken.worker
            )
        elif receipt.failed is not None:
            views[receiver] = DeliveryView(
                receiver=receiver,
                status="failed",
                code=receipt.failed.code,
                reason=receipt.failed.reason,
                at=receipt.at,
            )
    return list(views.values())


def _message_view(
    message: AclMessage,
    *,
    status: Literal["recorded", "rejected"] = "recorded",
    deliveries: list[DeliveryView] | None = None,
    rejection: Rejection | None = None,
    position: int,
) -> MessageView:
    fields = {name: getattr(message, name) for name in AclMessage.__struct_fields__}
    return MessageView(
        **fields,
        status=status,
        deliveries=deliveries or [],
        rejection=rejection,
        position=position,
    )
