"""What a send answers: its reply from each receiver's delivery, and its refusals
(:class:`SendRefused`, a :class:`ParleyError` that keeps the reply fields that still apply).
"""

from typing import Any
from typing import Literal

import msgspec

from parley.aggregates.conversation import Refusal
from parley.contracts.acl import AclMessage
from parley.contracts.acl import Delivery
from parley.contracts.acl import MessageReply
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError

__all__ = ["SendRefused", "failed", "outcome", "refusal_error"]


class SendRefused(ParleyError):
    """A send the service refuses; ``reply`` keeps the reply fields that still apply (a
    recorded message that reached nobody)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        reply: MessageReply | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.reply = reply


def failed(receiver: str, reason: str, code: str | None = None) -> Delivery:
    """A receiver's failed delivery."""
    return Delivery(
        receiver=receiver,
        status="failed",
        code=code or ErrorCode.MESSAGE_DELIVERY_FAILED.value,
        reason=reason,
    )


def outcome(message: AclMessage, deliveries: list[Delivery], position: int) -> MessageReply:
    """The reply to a send: recorded (no receiver to deliver to), delivered, partially.

    Raises:
        SendRefused: ``MESSAGE_DELIVERY_FAILED`` when the message reached no receiver (the
            message stays recorded; the error keeps the reply).
    """
    queued = [d.receiver for d in deliveries if d.status == "queued"]
    failures = [d for d in deliveries if d.status == "failed"]
    status: Literal["delivered", "partially_delivered", "failed", "recorded"]
    if not deliveries:
        status = "recorded"
    elif not failures:
        status = "delivered"
    elif queued:
        status = "partially_delivered"
    else:
        status = "failed"
    reply = MessageReply(
        ok=True,
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        status=status,
        delivered_to=queued,
        delivered_at=message.sent_at if queued else None,
        deliveries=deliveries,
        position=position,
    )
    if status == "failed":
        reasons = "; ".join(d.reason or d.receiver for d in failures)
        raise SendRefused(
            ErrorCode.MESSAGE_DELIVERY_FAILED,
            f"message {message.message_id} reached no receiver: {reasons}",
            {
                "message_id": message.message_id,
                "conversation_id": message.conversation_id,
                "status": status,
                "position": position,
                "deliveries": msgspec.to_builtins(deliveries),
            },
            reply,
        )
    return reply


def refusal_error(message: AclMessage, refusal: Refusal) -> SendRefused:
    """The error a refused message answers with."""
    return SendRefused(
        refusal.code,
        refusal.reason,
        {"message_id": message.message_id, "conversation_id": message.conversation_id},
    )
