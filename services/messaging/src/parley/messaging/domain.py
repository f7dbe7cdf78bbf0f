"""Pure policies of a send that are not the conversation's: what a send may ask, who gets a
message (direct, by capability to the least loaded agent, or broadcast), why a receiver is
unreachable, what the reply says, how long a send-and-wait waits.

The protocol rules a message must keep in its conversation (replies, reply-by, hop limit)
are the conversation aggregate's: :mod:`parley.aggregates.conversation`.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from parley.aggregates.agent import Agent
from parley.aggregates.conversation import Refusal, event_id
from parley.contracts.acl import AclMessage, Delivery, MessageReply, OutgoingMessage, SendMessage
from parley.contracts.envelope import NewEvent, utcnow
from parley.contracts.errors import ErrorCode, ParleyError
from parley.contracts.registry import AgentState

__all__ = [
    "SOURCE",
    "SendRefused",
    "failed",
    "new_event",
    "outcome",
    "refusal_error",
    "route",
    "running",
    "unreachable",
    "utc",
    "validate",
    "wait_seconds",
]

SOURCE = "/parley/messaging"
"""The ``source`` of the events messaging records."""
_STATE_HINT = {
    "created": "start it",
    "paused": "resume it",
    "stopped": "start it",
    "failed": "restart it",
}


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


def validate(out: OutgoingMessage) -> None:
    """Receivers or a capability, not both; broadcast only by capability.

    Raises:
        SendRefused: ``VALIDATION_ERROR`` listing every problem.
    """
    problems = []
    if not out.receivers and out.capability is None:
        problems.append(("receivers", "give receivers, or a capability to route by"))
    if out.receivers and out.capability is not None:
        problems.append(("capability", "give receivers or a capability, not both"))
    if out.broadcast and out.capability is None:
        problems.append(("broadcast", "broadcast needs a capability"))
    if problems:
        raise SendRefused(
            ErrorCode.VALIDATION_ERROR,
            "; ".join(m for _, m in problems),
            {"errors": [{"field": f"message.{f}", "message": m} for f, m in problems]},
        )


def running(agent: Agent | None) -> bool:
    """Whether ``agent`` takes deliveries."""
    return agent is not None and agent.state is AgentState.RUNNING


def route(
    out: OutgoingMessage,
    namespace: str,
    capable: Sequence[Agent],
    load: Callable[[str], tuple[int, int]],
) -> list[str]:
    """The receivers of ``out``: its own (de-duplicated), or by capability the least loaded
    running agent of ``capable`` (``load``: lower is less loaded; ties by id), or every
    running one when it broadcasts. The sender never routes to itself.

    Raises:
        SendRefused: ``MESSAGE_DELIVERY_FAILED`` when no capable agent is running.
    """
    if out.receivers:
        return list(dict.fromkeys(out.receivers))
    capable = [a for a in capable if a.id != out.sender]
    up = [a for a in capable if running(a)]
    if not up:
        others = ", ".join(f"{a.id} ({a.state.value})" for a in capable[:10])
        raise SendRefused(
            ErrorCode.MESSAGE_DELIVERY_FAILED,
            f"no running agent in namespace {namespace} has capability {out.capability!r}"
            + (f"; agents with it that are not running: {others}" if others else ""),
            {
                "capability": out.capability,
                "agents": [{"agent_id": a.id, "state": a.state.value} for a in capable],
            },
        )
    if out.broadcast:
        return sorted(a.id for a in up)
    return [min(up, key=lambda a: (*load(a.id), a.id)).id]


def unreachable(receiver: str, agent: Agent | None, namespace: str) -> str | None:
    """Why agent ``receiver`` cannot take a delivery now (None: it can)."""
    if running(agent):
        return None
    if agent is None:
        return f"agent {receiver} does not exist in namespace {namespace}"
    state = agent.state.value
    return f"agent {receiver} is {state}; {_STATE_HINT.get(state, 'start it')} to deliver to it"


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` with a zone (a time without one is read as UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


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


def wait_seconds(cmd: SendMessage, message: AclMessage) -> float:
    """How long a send-and-wait waits: its ``wait_seconds``, at most until ``reply-by``."""
    wait = cmd.wait_seconds or 0.0
    if message.reply_by is not None:
        wait = min(wait, (message.reply_by - utcnow()).total_seconds())
    return max(0.0, wait)
