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
from collections.abc import Awaitable, Callable, Mapping, Sequence

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from parley.contracts.acl import AclMessage
from parley.contracts.errors import ErrorCode, ParleyError
from parley.contracts.subjects import INBOX_ALL, INBOX_STREAM, INBOX_TASKS
from parley.kit.needs import Need
from parley.tasks.domain import Kind

__all__ = ["DURABLE", "Handler", "Inbox", "ensure_inbox_stream", "target"]

log = logging.getLogger(__name__)

DURABLE = "tasks-inbox"
"""The durable pull consumer every tasks process binds."""
MAX_DELIVER = 100
_GRACE_S = 5.0
_decode = msgspec.json.Decoder(AclMessage).decode

Handler = Callable[[str, str, Sequence[AclMessage]], Awaitable[None]]
"""Decides on one task's (or run's) batch of messages, given its id and namespace (a task
id is only unique in its namespace: the messages carry theirs)."""


async def ensure_inbox_stream(js: JetStreamContext) -> None:
    """Create the inbox stream as the messaging service does, unless it exists."""
    config = StreamConfig(
        name=INBOX_STREAM,
        subjects=[INBOX_ALL],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
    )
    with contextlib.suppress(BadRequestError):  # exists (created by messaging or the runtime)
        await js.add_stream(config)


def target(msg: Msg, message: AclMessage) -> str | None:
    """The ``task:<id>`` or ``run:<id>`` principal an inbox item is for."""
    dedup = (msg.headers or {}).get("Nats-Msg-Id", "")
    _, _, receiver = dedup.partition(":")
    if receiver.startswith(("task:", "run:")):
        return receiver
    return next((r for r in message.receivers if r.startswith(("task:", "run:"))), None)


class Inbox:
    """Pulls the tasks inbox in batches and routes each principal's items to its handler."""

    def __init__(
        self,
        js: JetStreamContext,
        handlers: Mapping[Kind, Handler],
        *,
        ack_wait: float,
        batch: int,
    ) -> None:
        self.js, self.ack_wait, self.batch = js, ack_wait, batch
        self._handlers: dict[str, Handler] = {str(kind): h for kind, h in handlers.items()}
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create the stream (if needed) and the consumer, and start pulling."""
        await ensure_inbox_stream(self.js)
        await self.ensure()
        self._sub = await self.js.pull_subscribe_bind(durable=DURABLE, stream=INBOX_STREAM)
        self._loop = asyncio.create_task(self._pull(), name="tasks-inbox")

    @property
    def needs(self) -> list[Need]:
        """The inbox stream and the consumer, kept while the process runs."""
        return [
            Need.stream_of(INBOX_STREAM, lambda: ensure_inbox_stream(self.js)),
            Need.durable(INBOX_STREAM, DURABLE, self.ensure),
        ]

    async def ensure(self) -> None:
        """Create the durable consumer (or keep it)."""
        await self.js.add_consumer(
            INBOX_STREAM,
            ConsumerConfig(
                durable_name=DURABLE,
                filter_subject=INBOX_TASKS,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=MAX_DELIVER,
                max_ack_pending=max(1000, self.batch * 4),
            ),
        )

    async def stop(self) -> None:
        """Stop pulling; let running decisions finish for a grace period, then hand the
        rest back (nak: another process takes them at once)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._running:
            await asyncio.wait(set(self._running), timeout=_GRACE_S)
        for running in list(self._running):
            running.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _pull(self) -> None:
        assert self._sub is not None
        while True:
            try:
                messages = await self._sub.fetch(self.batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tasks inbox: fetch failed; retrying")
                await asyncio.sleep(0.5)
                continue
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
                running = asyncio.create_task(self._handle(principal, namespace, items))
                self._running.add(running)
                running.add_done_callback(self._running.discard)

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
