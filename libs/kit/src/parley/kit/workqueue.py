"""A JetStream work queue consumer: durable, shared by every instance, bounded concurrency.

Work that must survive a crash (an agent's inbox, executions) is a message on a work-queue
stream. Every instance binds the same durable pull consumer; each message goes to one of
them and comes back after ``ack_wait`` unless the handler acknowledges it, so a killed
process's work is redelivered to another. The handler acks, naks or keeps the message; what
it leaves unanswered when it raises is nak'd with a growing delay (2 s, 4 s, … up to
``ack_wait``). Stopping (SIGTERM) stops pulling at once, lets running handlers finish for a
grace period, then cancels the rest and naks their messages, so another process takes them
without waiting for ``ack_wait``. The handler
acts for the principal of the message's ``Parley-Actor`` header (put there by
:func:`parley.kit.telemetry.inject` when the work was queued), like a command route.
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

from parley.contracts.envelope import acting_as
from parley.kit.needs import Need
from parley.kit.telemetry import carried_actor

__all__ = ["WorkQueue", "ensure_work_stream", "work_stream_need"]

log = logging.getLogger(__name__)


async def ensure_work_stream(js: JetStreamContext, name: str, subjects: Sequence[str]) -> None:
    """Create (or keep) a file-backed work-queue stream with a 2-minute de-duplication window."""
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


def work_stream_need(js: JetStreamContext, name: str, subjects: Sequence[str]) -> Need:
    """The work-queue stream ``name``, for a :class:`~parley.kit.needs.Keeper` to keep."""
    return Need.stream_of(name, lambda: ensure_work_stream(js, name, subjects))


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
        grace: float = 5.0,
    ) -> None:
        self.js, self.stream, self.durable = js, stream, durable
        self.filter_subject, self.handle = filter_subject, handle
        self.ack_wait, self.max_deliver, self.concurrency = ack_wait, max_deliver, concurrency
        self.grace = grace
        """Seconds :meth:`stop` lets running handlers finish before it cancels them."""
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def ensure(self) -> None:
        """Create the durable consumer (or keep it)."""
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

    @property
    def need(self) -> Need:
        """The consumer, for a :class:`~parley.kit.needs.Keeper` to keep."""
        return Need.durable(self.stream, self.durable, self.ensure)

    async def start(self) -> None:
        """Create the consumer (idempotent) and start pulling."""
        await self.ensure()
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._loop = asyncio.create_task(self._pull(), name=f"workqueue-{self.durable}")

    async def stop(self) -> None:
        """Stop pulling; give running handlers :attr:`grace` seconds, then cancel the rest
        (their messages are nak'd: another process takes them at once)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._running:
            await asyncio.wait(set(self._running), timeout=self.grace)
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
            with acting_as(carried_actor(msg.headers)):
                await self.handle(msg)
        except asyncio.CancelledError:
            await _hand_back(msg, None)  # stopping: another process takes it now
            raise
        except Exception:
            log.exception("%s: handler failed; the message will be redelivered", self.durable)
            tries = msg.metadata.num_delivered or 1
            await _hand_back(msg, min(self.ack_wait, float(2 ** min(tries, 6))))


async def _hand_back(msg: Msg, delay: float | None) -> None:
    """Nak ``msg`` unless its handler answered it already (best effort: unanswered, it comes
    back after ``ack_wait`` anyway)."""
    if msg.is_acked:
        return
    with contextlib.suppress(Exception):
        await asyncio.shield(msg.nak(delay=delay))
