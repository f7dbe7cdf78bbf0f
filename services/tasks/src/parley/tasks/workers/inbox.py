"""The tasks inbox: every message to a ``task:`` or ``run:`` principal, from a work queue.

The messaging service puts them on :data:`~parley.contracts.subjects.INBOX_TASKS` in the
work-queue stream :data:`~parley.contracts.subjects.INBOX_STREAM`. Every tasks process binds
the durable pull consumer ``tasks-inbox``; it fetches up to ``tasks_inbox_batch`` items at a
time and hands each task's (or run's) items to one decision, so the 50 proposals of a round
that arrive together are one append, not 50 competing ones. An item is acknowledged only
after its events are appended (or when it is unreadable or addressed to a task that does not
exist); a failed decision leaves its items to come back after ``ack_wait`` — to this process
or another, or to this one restarted.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from parley.contracts.acl import AclMessage
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.subjects import INBOX_ALL
from parley.contracts.subjects import INBOX_STREAM
from parley.contracts.subjects import INBOX_TASKS
from parley.kit.needs import Need
from parley.kit.workqueue import PullConsumer
from parley.kit.workqueue import ensure_work_stream
from parley.tasks.domain import Kind

__all__ = ["DURABLE", "Handler", "Inbox", "ensure_inbox_stream", "target"]

log = logging.getLogger(__name__)

DURABLE = "tasks-inbox"
"""The durable pull consumer every tasks process binds."""
MAX_DELIVER = 100
_decode = msgspec.json.Decoder(AclMessage).decode

Handler = Callable[[str, str, Sequence[AclMessage]], Awaitable[None]]
"""Decides on one task's (or run's) batch of messages, given its id and namespace (a task
id is only unique in its namespace: the messages carry theirs)."""


async def ensure_inbox_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create the inbox stream as the messaging service does, unless it exists."""
    # it may exist already, created by messaging or the runtime: leave it as they made it
    await ensure_work_stream(js, INBOX_STREAM, [INBOX_ALL], replicas=replicas, update=False)


def target(msg: Msg, message: AclMessage) -> str | None:
    """The ``task:<id>`` or ``run:<id>`` principal an inbox item is for."""
    dedup = (msg.headers or {}).get("Nats-Msg-Id", "")
    _, _, receiver = dedup.partition(":")
    if receiver.startswith(("task:", "run:")):
        return receiver
    return next((r for r in message.receivers if r.startswith(("task:", "run:"))), None)


class Inbox(PullConsumer):
    """Pulls the tasks inbox in batches and routes each principal's items to its handler."""

    def __init__(
        self,
        js: JetStreamContext,
        handlers: Mapping[Kind, Handler],
        *,
        ack_wait: float,
        batch: int,
        replicas: int = 1,
    ) -> None:
        super().__init__(
            js,
            stream=INBOX_STREAM,
            durable=DURABLE,
            filter_subject=INBOX_TASKS,
            ack_wait=ack_wait,
            max_deliver=MAX_DELIVER,
            max_ack_pending=max(1000, batch * 4),
        )
        self.batch, self.replicas = batch, replicas
        self._handlers: dict[str, Handler] = {str(kind): h for kind, h in handlers.items()}

    async def start(self) -> None:
        """Create the stream (if needed) and the consumer, and start pulling."""
        await ensure_inbox_stream(self.js, replicas=self.replicas)
        await super().start()

    @property
    def needs(self) -> list[Need]:
        """The inbox stream and the consumer, kept while the process runs."""
        return [
            Need.stream_of(
                INBOX_STREAM, lambda: ensure_inbox_stream(self.js, replicas=self.replicas)
            ),
            self.need,
        ]

    def _fetch_size(self) -> int:
        return self.batch

    async def _dispatch(self, messages: list[Msg]) -> None:
        groups: dict[tuple[str, str], list[tuple[Msg, AclMessage]]] = {}
        for msg in messages:
            try:
                message = _decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("tasks inbox: dropping an unreadable item")
                await msg.term()
                continue
            principal = target(msg, message)
            if principal is None:
                log.warning(
                    "tasks inbox: dropping %s (no task or run receiver)", message.message_id
                )
                await msg.ack()
                continue
            groups.setdefault((principal, message.namespace), []).append((msg, message))
        for (principal, namespace), items in groups.items():
            self._spawn(self._handle(principal, namespace, items))

    async def _handle(
        self, principal: str, namespace: str, items: list[tuple[Msg, AclMessage]]
    ) -> None:
        kind, _, key = principal.partition(":")
        try:
            await self._handlers[kind](key, namespace, [message for _, message in items])
        except asyncio.CancelledError:  # stopping: another process takes them now
            for msg, _ in items:
                with contextlib.suppress(Exception):
                    await msg.nak()
            raise
        except ParleyError as refusal:
            if refusal.code not in (ErrorCode.TASK_NOT_FOUND, ErrorCode.RUN_NOT_FOUND):
                log.warning("%s: answers refused (%s); dropping them", principal, refusal)
        except Exception:
            log.exception("%s: answers not recorded; they will be redelivered", principal)
            for msg, _ in items:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
            return
        for msg, _ in items:
            with contextlib.suppress(Exception):
                await msg.ack()
