"""Where recorded messages go: agents' inboxes (a JetStream work queue) and reply waiters.

- Each receiving agent gets one work item on :data:`~parley.contracts.subjects.INBOX_STREAM`
  (work-queue retention, file storage) at ``subjects.inbox(<agent id>)``; a task or run
  receiver's item goes to the tasks inbox. The body is the :class:`AclMessage` as JSON;
  ``Nats-Msg-Id`` is ``<message id>:<receiver>``, so a re-published item is stored once.
- Every recorded reply is announced (core NATS, not stored) on
  ``subjects.reply_notice(<in-reply-to>)``, and on the original's id when ``in-reply-to``
  names the original by its ``reply-with``: a send-and-wait listens there.
- :func:`redeliver` runs once at start: deliveries recorded but never taken by a runtime
  (no ``message.delivered``/``message.failed``; e.g. a messaging process killed between the
  append and the publish) are published again.
"""

import logging
import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import msgspec
import stamina
from nats.aio.client import Client
from nats.js import JetStreamContext

from parley.aggregates.conversation import evolve
from parley.contracts import subjects
from parley.contracts.acl import TAIL_HEADER
from parley.contracts.acl import AclMessage
from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.envelope import current_actor
from parley.contracts.envelope import utcnow
from parley.eventstore.port import EventStore
from parley.eventstore.repository import load
from parley.kit.telemetry import current_traceparent
from parley.kit.workqueue import ensure_work_stream
from parley.messaging.directory import Directory

__all__ = ["Outbox", "redeliver"]

log = logging.getLogger(__name__)

_SUBJECT_SAFE = re.compile(r"^[A-Za-z0-9_@:-]+(\.[A-Za-z0-9_@:-]+)*$")
_RETRY: dict[str, Any] = {
    "attempts": 2,
    "timeout": None,
    "wait_initial": 0.05,
    "wait_max": 0.1,
    "wait_jitter": 0.05,
}
"""A publish JetStream refused is tried twice more, briefly (then the send answers
``SERVICE_UNAVAILABLE`` and the caller retries with the same message id)."""
_encode = msgspec.json.Encoder().encode


class Outbox:
    """Publishes work items and reply announcements on one NATS connection."""

    def __init__(self, nc: Client, js: JetStreamContext, *, replicas: int = 1) -> None:
        self.nc, self.js, self.replicas = nc, js, replicas

    async def start(self) -> None:
        """Create (or keep) the inbox work-queue stream (``replicas`` copies)."""
        await ensure_work_stream(
            self.js, subjects.INBOX_STREAM, [subjects.INBOX_ALL], replicas=self.replicas
        )

    async def enqueue(
        self,
        message: AclMessage,
        receiver: str,
        body: bytes,
        traceparent: str | None = None,
        tail: str | None = None,
    ) -> bool:
        """Put ``message`` in ``receiver``'s inbox; False if JetStream kept refusing."""
        headers = {"Nats-Msg-Id": f"{message.message_id}:{receiver}"}
        if tail:  # where the conversation ends: the receiver records its delivery after it
            headers[TAIL_HEADER] = tail
        # the delivery continues the span that sent it (else the sender's trace)
        if parent := current_traceparent() or traceparent:
            headers["traceparent"] = parent
        if (
            actor := current_actor.get()
        ):  # the receiving agent's turn acts for the sender's principal
            headers[ACTOR_HEADER] = actor
        subject = subjects.inbox(receiver)
        try:  # the hot path: one publish, no retry machinery
            await self.js.publish(subject, body, stream=subjects.INBOX_STREAM, headers=headers)
            return True
        except Exception:
            log.warning("queueing %s for %s failed; retrying", message.message_id, receiver)
        try:
            async for attempt in stamina.retry_context(on=Exception, **_RETRY):
                with attempt:
                    await self.js.publish(
                        subject, body, stream=subjects.INBOX_STREAM, headers=headers
                    )
        except Exception:
            log.exception("could not queue %s for %s", message.message_id, receiver)
            return False
        return True

    async def announce(self, reply: AclMessage, original_id: str | None, body: bytes) -> None:
        """Tell waiters of the message ``reply`` answers that it came."""
        for name in {reply.in_reply_to, original_id}:
            if name and _SUBJECT_SAFE.match(name):
                await self.nc.publish(subjects.reply_notice(name), body)


async def redeliver(directory: Directory, store: EventStore, outbox: Outbox, window: float) -> int:
    """Publish again the deliveries recorded within ``window`` seconds that none took."""
    by_conversation: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for (message_id, receiver), scope in directory.untaken().items():
        by_conversation[scope].append((message_id, receiver))
    since = utcnow() - timedelta(seconds=window)
    count = 0
    for (namespace, conversation_id), items in by_conversation.items():
        stream = directory.conversation_stream(namespace, conversation_id)
        conversation = (await load(store, stream, evolve)).state
        if conversation is None:
            continue
        for message_id, receiver in items:
            message = conversation.messages.get(message_id)
            if message is None or (message.sent_at is not None and message.sent_at < since):
                continue
            if receiver in conversation.receipts.get(message_id, {}):
                continue  # taken, or failed
            if await outbox.enqueue(message, receiver, _encode(message)):
                count += 1
    if count:
        log.info("re-published %d deliveries no runtime had taken", count)
    return count
