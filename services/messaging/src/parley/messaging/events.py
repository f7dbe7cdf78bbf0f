"""The events messaging records in a conversation, with ids derived from the message (a
retried send derives the same event, which the store keeps once)."""

import msgspec

from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import event_id
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageRejected
from parley.contracts.acl import MessageSent
from parley.contracts.acl import SendMessage
from parley.contracts.envelope import NewEvent
from parley.kit.telemetry import current_traceparent

__all__ = ["SOURCE", "decided_event", "new_event"]

SOURCE = "/parley/messaging"
"""The ``source`` of the events messaging records."""


def new_event(
    message: AclMessage,
    event_type: str,
    payload: msgspec.Struct,
    *id_parts: str,
    traceparent: str | None,
    causation: str | None = None,
    correlation: str | None = None,
) -> NewEvent:
    """An event of ``message``'s conversation, its id derived from the message and
    ``id_parts`` (a retried send derives the same event, which the store keeps once)."""
    return NewEvent(
        type=event_type,
        subject=message.conversation_id,
        data=msgspec.to_builtins(payload),
        namespace=message.namespace,
        source=SOURCE,
        id=event_id(message.namespace, message.conversation_id, message.message_id, *id_parts),
        correlationid=correlation,
        causationid=causation,
        traceparent=traceparent,
    )


def decided_event(
    cmd: SendMessage,
    state: Conversation | None,
    decided: tuple[str, msgspec.Struct],
    traceparent: str | None,
) -> NewEvent:
    """The envelope of an event the conversation decided on ``cmd``: a recorded message is
    caused by the message it answers, correlated with the request and carries the send's
    ``traceparent`` (the caller's, else this span's); a refusal is neither, and carries this
    span's."""
    match decided:
        case ("message.sent", MessageSent(message=message) as payload):
            original = state.original(message.in_reply_to or "") if state else None
            return new_event(
                message,
                "message.sent",
                payload,
                "sent",
                causation=original.message_id if original else None,
                correlation=cmd.request_id,
                traceparent=traceparent,
            )
        case ("message.rejected", MessageRejected(message=message) as payload):
            return new_event(
                message,
                "message.rejected",
                payload,
                "rejected",
                traceparent=current_traceparent(),  # this span's (a refusal happens here)
            )
    raise TypeError(f"messaging records no {decided[0]} event")
