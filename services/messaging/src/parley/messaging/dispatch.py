"""After a message is recorded: queue it for each receiver, record the unreachable ones and
tell the sending agent.

System notices: a receiving agent that cannot be reached, and a message refused for its hop
count, are answered to the *sending agent* with a ``failure`` from ``user:parley``
(:func:`parley.aggregates.conversation.notice`), recorded in the same conversation and
announced to its waiters, so an agent waiting for a reply learns at once.
"""

import asyncio
import logging

import msgspec

from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import Refusal
from parley.aggregates.conversation import is_agent
from parley.aggregates.conversation import notice
from parley.contracts.acl import AclMessage
from parley.contracts.acl import Delivery
from parley.contracts.acl import MessageFailed
from parley.contracts.acl import MessageReply
from parley.contracts.acl import MessageSent
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.eventstore import ANY_VERSION
from parley.eventstore import EventStore
from parley.kit.telemetry import current_traceparent
from parley.messaging import domain
from parley.messaging import replies
from parley.messaging.directory import Directory
from parley.messaging.events import new_event
from parley.messaging.workers.delivery import Outbox

__all__ = ["Dispatch"]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode


class Dispatch:
    """Delivers recorded messages and records what could not be delivered."""

    def __init__(self, store: EventStore, directory: Directory, outbox: Outbox) -> None:
        self.store, self.directory, self.outbox = store, directory, outbox

    async def deliver(
        self,
        message: AclMessage,
        conversation: Conversation,
        replayed: bool,
        traceparent: str | None,
        tail: str | None = None,
    ) -> MessageReply:
        """Queue ``message`` for each agent, task or run receiver; record the failures.

        A ``replayed`` message (recorded by an earlier send) answers what became of each
        delivery and re-queues only those nobody took yet. ``tail``: the conversation's end
        as the message's record left it, passed on to the receivers (``TAIL_HEADER``).
        """
        ns, message_id = message.namespace, message.message_id
        failed_before = conversation.failed.get(message_id, {}) if replayed else {}
        taken = conversation.delivered.get(message_id, set()) if replayed else set()
        outcomes: dict[str, Delivery] = {}
        failures: list[tuple[str, str]] = []
        to_queue: list[str] = []
        for receiver in message.receivers:
            if receiver.startswith("user:"):
                continue
            if (failure := failed_before.get(receiver)) is not None:
                outcomes[receiver] = replies.failed(receiver, failure.reason, failure.code)
                continue
            if receiver in taken:
                outcomes[receiver] = Delivery(receiver=receiver, status="queued")
                continue
            if is_agent(receiver) and not replayed:
                reason = domain.unreachable(receiver, self.directory.get(receiver, ns), ns)
                if reason is not None:
                    failures.append((receiver, reason))
                    outcomes[receiver] = replies.failed(receiver, reason)
                    continue
            to_queue.append(receiver)
        body = _encode(message)
        queued = await asyncio.gather(
            *(self.outbox.enqueue(message, r, body, traceparent, tail) for r in to_queue)
        )
        lost = [r for r, ok in zip(to_queue, queued, strict=True) if not ok]
        if lost:
            raise replies.SendRefused(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"message {message_id} is recorded but could not be queued for "
                f"{', '.join(lost)}; retry with the same message_id",
                {"message_id": message_id, "conversation_id": message.conversation_id},
            )
        for receiver in to_queue:
            outcomes[receiver] = Delivery(receiver=receiver, status="queued")
        self.directory.queued(message, [r for r in to_queue if is_agent(r)])
        position = conversation.sent_at.get(message_id, 0)
        for receiver, reason in failures:
            position = max(position, await self._record_failure(message, receiver, reason))
        deliveries = [outcomes[r] for r in message.receivers if r in outcomes]
        return replies.outcome(message, deliveries, position)

    async def _record_failure(self, message: AclMessage, receiver: str, reason: str) -> int:
        failure = MessageFailed(
            message_id=message.message_id,
            receiver=receiver,
            code=ErrorCode.MESSAGE_DELIVERY_FAILED.value,
            reason=reason,
        )
        event = new_event(
            message,
            "message.failed",
            failure,
            "failed",
            receiver,
            traceparent=current_traceparent(),
        )
        position = await self._append(message, event)
        refusal = Refusal(code=ErrorCode.MESSAGE_DELIVERY_FAILED, reason=reason)
        await self.notify_sender(message, receiver, refusal)
        return position

    async def notify_sender(self, message: AclMessage, receiver: str, refusal: Refusal) -> None:
        """Tell an agent sender that ``message`` did not reach ``receiver`` (a system
        ``failure``, recorded, queued to the sender's inbox, announced to its waiters)."""
        sender = message.sender
        if not is_agent(sender):
            return
        note = notice(message, receiver, refusal, utcnow())
        event = new_event(
            note,
            "message.sent",
            MessageSent(message=note),
            "sent",
            causation=message.message_id,
            traceparent=current_traceparent(),
        )
        try:
            await self._append(message, event)
            body = _encode(note)
            if domain.running(self.directory.get(sender, message.namespace)):
                await self.outbox.enqueue(note, sender, body)
            await self.outbox.announce(note, message.message_id, body)
        except Exception:  # a notice is a courtesy; the failure itself is recorded
            log.exception("could not notify %s about %s", sender, message.message_id)

    async def _append(self, message: AclMessage, event: NewEvent) -> int:
        """Append to the conversation whatever its version (failures and notices do not
        depend on its state); the event's global position."""
        stream = self.directory.conversation_stream(message.namespace, message.conversation_id)
        return (await self.store.append(stream, [event], ANY_VERSION)).position
