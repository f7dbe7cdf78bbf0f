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
import json
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Sequence
from dataclasses import KW_ONLY
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
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


_EXPIRES_S = 1.0
"""How long one pull request waits on the server for work; an ended one is asked again."""
_LOST_S = _EXPIRES_S + 1.0
"""Pull requests not heard of for this long are taken as lost and asked again (after a
reconnect :meth:`PullConsumer.resume` does at once)."""
_CALM_S = 0.5
"""The pause after a refused pull request (JetStream unavailable, too many waiting)."""


@dataclass(eq=False)
class PullConsumer:
    """A durable pull consumer every instance binds: start, stop, and the pull loop.

    Subclasses say how many messages may be on hand at once (:meth:`_fetch_size`: asked for
    and not delivered yet, plus what the subclass is working on) and what delivered messages
    become (:meth:`_dispatch`, which hands work to :meth:`_spawn`).

    The consumer keeps pull requests open on the server rather than fetching: each asks for
    a number of messages, lives :data:`_EXPIRES_S`, and is answered by the messages as they
    come (one publish per message, nothing per item besides its ack). A request has its own
    reply subject: a request's end (``408`` expired, ``409`` or ``503`` refused) says how
    many of its messages it did not deliver, and the consumer asks again when half its room
    is free, or when nothing is asked. A restarted server forgets the open requests without a
    word: the process's :class:`~parley.kit.needs.Keeper` calls :meth:`resume` once the
    consumer is in place after a reconnect, and a request not heard of for
    :data:`_LOST_S` is forgotten too. nats-py's ``fetch`` sent two pull requests per message
    under a trickle (a ``no_wait`` probe, its ``404``, then a waiting one) and woke its caller
    through a queue: a sequential work queue cost ~500 µs of the consumer's CPU and ~400 µs
    of the server's an item, against ~300 and ~290 now (a publisher and a consumer, 2,000
    items, one after the other).
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
    _sub: Subscription | None = field(default=None, init=False)
    _loop: asyncio.Task[None] | None = field(default=None, init=False)
    _running: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _stopping: bool = field(default=False, init=False)
    _inbox: str = field(default="", init=False)
    _asked: int = field(default=0, init=False)
    """Messages asked for by the open pull requests and not delivered yet."""
    _requests: dict[str, tuple[int, float]] = field(default_factory=dict, init=False)
    """Recent pull requests (reply subject → how many messages, when asked)."""
    _sent: int = field(default=0, init=False)
    _ready: list[Msg] = field(default_factory=list, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _heard: float = field(default=0.0, init=False)
    """When the server last answered (a message, or the end of a request)."""
    _calm_until: float = field(default=0.0, init=False)
    """No new request before this: the last one was refused (503, 409)."""

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
        return Need.durable(self.stream, self.durable, self.ensure, self.resume)

    def stream_and_consumer(self, subjects: Sequence[str], *, replicas: int = 1) -> list[Need]:
        """Its work-queue stream (of ``subjects``) and the consumer, for a Keeper to keep."""
        return [work_stream_need(self.js, self.stream, subjects, replicas=replicas), self.need]

    def resume(self) -> None:
        """Forget the open pull requests and ask again (the server may have restarted)."""
        self._asked = 0
        self._requests.clear()
        self._wake.set()

    async def start(self) -> None:
        """Create the consumer (idempotent) and start pulling."""
        await self.ensure()
        nc = self.js._nc
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(f"{self._inbox}.*", cb=self._on_msg)
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
        """How many messages may be asked for and not delivered yet (0: none until a
        running handler ends)."""
        raise NotImplementedError

    async def _dispatch(self, messages: list[Msg]) -> None:
        """Turn delivered messages (those of one read, in order) into work (through
        :meth:`_spawn`)."""
        raise NotImplementedError

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task that :meth:`stop` cancels."""
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._spawn_done)

    def _spawn_done(self, task: "asyncio.Task[None]") -> None:
        self._running.discard(task)
        self._wake.set()  # room for more

    async def _on_msg(self, msg: Msg) -> None:
        """A delivered message, or a status on one of the pull requests' reply subjects."""
        self._heard = now = time.monotonic()
        if msg.reply:  # a message (its subject is the one it was stored on)
            self._asked = max(0, self._asked - 1)
            self._ready.append(msg)
        elif (status := (headers := msg.headers or {}).get("Status")) != "100":
            # The request ended: 408 expired, 409 or 503 refused. The server says how many
            # of its messages it did not deliver; a refused request delivered none.
            asked = self._requests.pop(msg.subject, (0, 0.0))[0]
            undelivered = int(headers.get("Nats-Pending-Messages") or asked)
            self._asked = max(0, self._asked - undelivered)
            if status != "408":
                self._calm_until = now + _CALM_S
            self._wake.set()
        assert self._sub is not None
        if self._ready and self._sub._pending_queue.empty():  # what was read, in one batch
            ready, self._ready = self._ready, []
            if self._stopping:  # delivered as the process stops: another one takes them
                for each in ready:
                    await hand_back(each, None)
                return
            await self._dispatch(ready)
            self._wake.set()

    async def _ask(self, count: int) -> None:
        """Open a pull request for ``count`` messages."""
        now = time.monotonic()
        self._requests = {
            reply: request
            for reply, request in self._requests.items()
            if now - request[1] < _LOST_S  # ended by now, whether or not it was told
        }
        self._sent += 1
        reply = f"{self._inbox}.{self._sent}"
        self._requests[reply] = (count, now)
        self._asked += count
        self._heard = now
        body = json.dumps({"batch": count, "expires": int(_EXPIRES_S * 1e9)}).encode()
        await self.js._nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}", body, reply=reply
        )

    async def _pull(self) -> None:
        nc = self.js._nc
        while not self._stopping:
            self._wake.clear()  # whatever wakes it from here on is looked at in the next round
            if self._asked and time.monotonic() - self._heard > _LOST_S:
                self._asked = 0  # nothing said for long: the requests are gone
                self._requests.clear()
            if (calm := self._calm_until - time.monotonic()) > 0:
                await asyncio.sleep(calm)
            room = self._fetch_size()
            free = room - self._asked - len(self._ready)
            # (not while disconnected: a request kept for the reconnect would come on top)
            if free > 0 and (not self._asked or 2 * free >= room) and nc.is_connected:
                try:
                    await self._ask(free)
                except Exception:
                    log.exception("%s: pull request failed; retrying", self.durable)
                    await asyncio.sleep(0.5)
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_EXPIRES_S):
                    await self._wake.wait()


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
