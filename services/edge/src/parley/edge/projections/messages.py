"""The messages projection: every FIPA-ACL message with what became of each delivery.

It folds ``conversation-<id>`` streams (``message.sent|delivered|failed|rejected``) with the
shared machinery of :class:`~parley.edge.projections._base.FoldingProjection`. History lists
recorded messages in the order they were recorded (global position); a refused message is
readable by id with its ``rejection``.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec

from parley.contracts.acl import (
    AclMessage,
    MessageDelivered,
    MessageFailed,
    MessageRejected,
    MessageSent,
)
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


@dataclass(slots=True)
class _Entry:
    message: AclMessage
    position: int
    deliveries: dict[str, DeliveryView] = field(default_factory=dict)
    rejection: Rejection | None = None


class MessagesProjection(FoldingProjection):
    """Messages by id, by conversation, and in recorded order."""

    prefix = "conversation-"
    name = "messages-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
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
            message = entry.message
            if entry.rejection is not None or message.namespace != namespace:
                continue
            if performatives and message.performative.value not in performatives:
                continue
            if agent_ids and message.sender not in agent_ids:
                if agent_ids.isdisjoint(message.receivers):
                    continue
            found.append((entry.position, message))
        return found

    # --- the fold ----------------------------------------------------------------------

    def _fold(self, event: Event) -> None:
        match event.type:
            case "message.sent":
                message = msgspec.convert(event.data, MessageSent).message
                key = (event.namespace, message.message_id)
                if key in self._entries:
                    return
                entry = _Entry(message=message, position=event.position)
                for receiver in message.receivers:
                    status = "recorded" if receiver.startswith("user:") else "queued"
                    entry.deliveries[receiver] = DeliveryView(receiver=receiver, status=status)
                self._add(key, entry)
            case "message.delivered":
                taken = msgspec.convert(event.data, MessageDelivered)
                entry = self._entries.get((event.namespace, taken.message_id))
                if entry is not None:
                    entry.deliveries[taken.receiver] = DeliveryView(
                        receiver=taken.receiver,
                        status="delivered",
                        at=event.time,
                        worker=taken.worker,
                    )
            case "message.failed":
                failure = msgspec.convert(event.data, MessageFailed)
                entry = self._entries.get((event.namespace, failure.message_id))
                if entry is not None:
                    entry.deliveries[failure.receiver] = DeliveryView(
                        receiver=failure.receiver,
                        status="failed",
                        code=failure.code,
                        reason=failure.reason,
                        at=event.time,
                    )
            case "message.rejected":
                refused = msgspec.convert(event.data, MessageRejected)
                key = (event.namespace, refused.message.message_id)
                if key not in self._entries:
                    rejection = Rejection(code=refused.code, reason=refused.reason)
                    self._add(key, _Entry(refused.message, event.position, rejection=rejection))

    def _add(self, key: tuple[str, str], entry: _Entry) -> None:
        self._entries[key] = entry
        self._order.append(entry)
        conversation = (key[0], entry.message.conversation_id)
        self._by_conversation.setdefault(conversation, []).append(entry)


def _view(entry: _Entry) -> MessageView:
    fields = {name: getattr(entry.message, name) for name in AclMessage.__struct_fields__}
    return MessageView(
        **fields,
        status="rejected" if entry.rejection is not None else "recorded",
        deliveries=list(entry.deliveries.values()),
        rejection=entry.rejection,
        position=entry.position,
    )
