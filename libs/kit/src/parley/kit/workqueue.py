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
:func:`parley.kit.telemetry.inject` when the work was queued), like a command route, inside a
consumer span that continues the message's ``traceparent``.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Sequence
from dataclasses import KW_ONLY
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from nats.js.api import ConsumerConfig
from nats.js.api import RetentionPolicy
from nats.js.api import StorageType
from nats.js.api import StreamConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from parley.contracts.envelope import acting_as
from parley.kit.needs import Need
from parley.kit.streams import ensure_stream
from parley.kit.telemetry import carried_actor
from parley.kit.telemetry import extract

__all__ = [
    "STOP_WAIT_S",
    "PullConsumer",
    "WorkQueue",
    "ensure_work_stream",
    "hand_back",
    "stop_loop",
    "work_stream_need",
]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("parley.kit.workqueue")


async def ensure_work_stream(
    js: JetStreamContext,
    name: str,
    subjects: Sequence[str],
    *,
    replicas: int = 1,
    update: bool = True,
) -> None:
    """Create (or keep) a file-backed work-queue stream with a 2-minute de-duplication window
    and ``replicas`` copies (``update``: as :func:`~parley.kit.streams.ensure_stream`)."""
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
        num_replicas=replicas,
    )
    await ensure_stream(js, config, update=update)


def work_stream_need(
    js: JetStreamContext, name: str, subjects: Sequence[str], *, replicas: int = 1
) -> Need:
    """The work-queue stream ``name``, for a :class:`~parley.kit.needs.Keeper` to keep."""
    return Need.stream_of(name, lambda: ensure_work_stream(js, name, subjects, replicas=replicas))


@dataclass(eq=False)
class PullConsumer:
    """A durable pull consumer every instance binds: start, stop, and the fetch loop.

    Subclasses say how many messages to fetch next (:meth:`_fetch_size`) and what a fetched
    batch becomes (:meth:`_dispatch`, which hands work to :meth:`_spawn`).
    """

    js: JetStreamContext
    _: KW_ONLY
    stream: str
    durable: str
    filter_subject: str
    ack_wait: float
    max_deliver: int = 100
    max_ack_pending: int | None = None
    grace: float = 5.0
    """Seconds :meth:`stop` lets running handlers finish before it cancels them."""
    _sub: JetStreamContext.PullSubscription | None = field(default=None, init=False)
    _loop: asyncio.Task[None] | None = field(default=None, init=False)
    _running: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _stopping: bool = field(default=False, init=False)

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
                max_ack_pending=self.max_ack_pending,
            ),
        )

    @property
    def need(self) -> Need:
        """The consumer, for a :class:`~parley.kit.needs.Keeper` to keep."""
        return Need.durable(self.stream, self.durable, self.ensure)

    def stream_and_consumer(self, subjects: Sequence[str], *, replicas: int = 1) -> list[Need]:
        """Its work-queue stream (of ``subjects``) and the consumer, for a Keeper to keep."""
        return [work_stream_need(self.js, self.stream, subjects, replicas=replicas), self.need]

    async def start(self) -> None:
        """Create the consumer (idempotent) and start pulling."""
        await self.ensure()
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._loop = asyncio.create_task(self._pull(), name=f"workqueue-{self.durable}")

    async def stop(self) -> None:
        """Stop pulling; give running handlers :attr:`grace` seconds, then cancel the rest
        (their messages are nak'd: another process takes them at once)."""
        self._stopping = True
        await stop_loop(self._loop, f"workqueue {self.durable}")
        if self._running:
            await asyncio.wait(set(self._running), timeout=self.grace)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def _fetch_size(self) -> int:
        """How many messages to fetch next; 0 waits until a running handler ends."""
        raise NotImplementedError

    async def _dispatch(self, messages: list[Msg]) -> None:
        """Turn a fetched batch into work (through :meth:`_spawn`)."""
        raise NotImplementedError

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task that :meth:`stop` cancels."""
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _pull(self) -> None:
        assert self._sub is not None
        while not self._stopping:
            size = self._fetch_size()
            if size <= 0:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await self._sub.fetch(size, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: fetch failed; retrying", self.durable)
                await asyncio.sleep(0.5)
                continue
            if self._stopping:  # fetched as the process stops: another one takes them
                for msg in messages:
                    await hand_back(msg, None)
                return
            await self._dispatch(messages)


STOP_WAIT_S = 2.0
"""How long :func:`stop_loop` waits for a cancelled loop to end."""


async def stop_loop(loop: asyncio.Task[None] | None, name: str) -> None:
    """Cancel a fetch loop and wait for it, at most :data:`STOP_WAIT_S` seconds.

    The loop must also check a stop flag: on Python 3.11 a cancellation that meets a message
    arriving for nats-py's ``next_msg`` is lost (its ``wait_for`` returns the message), and
    the loop would fetch on while its process waited for it to end.
    """
    if loop is None:
        return
    loop.cancel()
    done, _ = await asyncio.wait({loop}, timeout=STOP_WAIT_S)
    if not done:
        log.warning("%s did not stop within %s s", name, STOP_WAIT_S)
        loop.cancel()


@dataclass(eq=False, kw_only=True)
class WorkQueue(PullConsumer):
    """Pulls from one durable consumer and runs ``handle`` on at most ``concurrency`` at once."""

    handle: Callable[[Msg], Awaitable[None]]
    concurrency: int = 64

    def _fetch_size(self) -> int:
        return self.concurrency - len(self._running)

    async def _dispatch(self, messages: list[Msg]) -> None:
        for msg in messages:
            self._spawn(self._run(msg))

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
            await hand_back(msg, None)  # stopping: another process takes it now
            raise
        except Exception:
            log.exception("%s: handler failed; the message will be redelivered", self.durable)
            tries = msg.metadata.num_delivered or 1
            await hand_back(msg, min(self.ack_wait, float(2 ** min(tries, 6))))


async def hand_back(msg: Msg, delay: float | None) -> None:
    """Nak ``msg`` unless its handler answered it already (best effort: unanswered, it comes
    back after ``ack_wait`` anyway)."""
    if msg.is_acked:
        return
    with contextlib.suppress(Exception):
        await asyncio.shield(msg.nak(delay=delay))
