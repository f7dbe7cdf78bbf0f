"""A JetStream work queue consumer: durable, shared by every instance, bounded concurrency.

Work that must survive a crash (an agent's inbox, executions) is a message on a work-queue
stream. Every instance binds the same durable pull consumer; each message goes to one of
them and comes back after ``ack_wait`` unless the handler acknowledges it, so a killed
process's work is redelivered to another. The handler acks, naks or keeps the message (the
worker only catches what it raises and leaves the message to be redelivered). The handler
acts for the principal of the message's ``Parley-Actor`` header (put there by
:func:`parley.kit.telemetry.inject` when the work was queued), like a command route, inside a
consumer span that continues the message's ``traceparent``.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from parley.contracts.envelope import acting_as
from parley.kit.telemetry import carried_actor, extract

__all__ = ["WorkQueue", "ensure_work_stream"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("parley.kit.workqueue")


async def ensure_work_stream(
    js: JetStreamContext, name: str, subjects: Sequence[str], *, replicas: int = 1
) -> None:
    """Create (or keep) a file-backed work-queue stream with a 2-minute de-duplication window
    and ``replicas`` copies."""
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
        num_replicas=replicas,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class WorkQueue:
    """Pulls from one durable consumer and runs ``handle`` on at most ``concurrency`` at once."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        filter_subject: str,
        handle: Callable[[Msg], Awaitable[None]],
        ack_wait: float,
        max_deliver: int = 100,
        concurrency: int = 64,
    ) -> None:
        self.js, self.stream, self.durable = js, stream, durable
        self.filter_subject, self.handle = filter_subject, handle
        self.ack_wait, self.max_deliver, self.concurrency = ack_wait, max_deliver, concurrency
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create the consumer (idempotent) and start pulling."""
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.durable,
                filter_subject=self.filter_subject,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=self.max_deliver,
            ),
        )
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._loop = asyncio.create_task(self._pull(), name=f"workqueue-{self.durable}")

    async def stop(self) -> None:
        """Stop pulling; running handlers are cancelled (their messages come back later)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _pull(self) -> None:
        assert self._sub is not None
        while True:
            free = self.concurrency - len(self._running)
            if free <= 0:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await self._sub.fetch(free, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: fetch failed; retrying", self.durable)
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                task = asyncio.create_task(self._run(msg))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _run(self, msg: Msg) -> None:
        try:
            with (
                acting_as(carried_actor(msg.headers)),
                _tracer.start_as_current_span(
                    f"process {self.durable}",
                    context=extract(msg.headers),  # the trace that queued the work
                    kind=SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "nats",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": msg.subject,
                        "messaging.consumer.group.name": self.durable,
                    },
                ),
            ):
                await self.handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: handler failed; the message will be redelivered", self.durable)
