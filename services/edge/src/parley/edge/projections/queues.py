"""The JetStream streams' depths and the work queues' consumer lag, polled (not folded).

Every :data:`PERIOD_S` the poller reads the state of the event, work and inbox streams
(messages, bytes) and of the durable consumers of the work and inbox queues (messages not
yet delivered, delivered but not acknowledged, redelivered). The metrics views read the last
poll; a failed poll keeps the previous figures and is logged once until one succeeds.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from parley.contracts.subjects import EVENT_STREAM
from parley.contracts.subjects import INBOX_STREAM
from parley.contracts.subjects import WORK_STREAM

__all__ = ["PERIOD_S", "ConsumerDepth", "QueueDepths", "StreamDepth"]

log = logging.getLogger(__name__)

PERIOD_S = 5.0
"""Seconds between polls."""
_QUEUES = (WORK_STREAM, INBOX_STREAM)
"""Streams whose durable consumers are polled (the event stream's are ephemeral)."""


@dataclass(frozen=True, slots=True)
class StreamDepth:
    """A stream's size."""

    stream: str
    messages: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ConsumerDepth:
    """A durable consumer's backlog."""

    stream: str
    consumer: str
    pending: int
    """Messages not yet delivered: the consumer's lag."""
    ack_pending: int
    """Delivered, not yet acknowledged: in progress."""
    redelivered: int
    """Delivered more than once, not yet acknowledged."""


class QueueDepths:
    """The last poll of the streams and queues (see the module)."""

    def __init__(self, js: JetStreamContext, period_s: float = PERIOD_S) -> None:
        self.js, self.period_s = js, period_s
        self.streams: list[StreamDepth] = []
        self.consumers: list[ConsumerDepth] = []
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Poll now and every ``period_s`` seconds until :meth:`stop` (in the background:
        start-up does not wait for JetStream)."""
        self._task = asyncio.create_task(self._run(), name="queue-depths")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def inbox_backlog(self) -> int:
        """Messages waiting in the inbox queues (not yet delivered or not yet acknowledged)."""
        return sum(c.pending + c.ack_pending for c in self.consumers if c.stream == INBOX_STREAM)

    async def poll(self) -> None:
        """Read the streams' and consumers' state now."""
        try:
            streams, consumers = [], []
            for name in (EVENT_STREAM, *_QUEUES):
                with contextlib.suppress(NotFoundError):  # not made yet
                    state = (await self.js.stream_info(name)).state
                    streams.append(StreamDepth(name, state.messages, state.bytes))
            for name in _QUEUES:
                with contextlib.suppress(NotFoundError):
                    for info in await self.js.consumers_info(name):
                        if info.config.durable_name:
                            consumers.append(
                                ConsumerDepth(
                                    name,
                                    info.name,
                                    info.num_pending or 0,
                                    info.num_ack_pending or 0,
                                    info.num_redelivered or 0,
                                )
                            )
        except Exception as exc:
            if not self._failing:
                log.warning("polling the queues failed (%s); keeping the last figures", exc)
            self._failing = True
            return
        self.streams, self.consumers, self._failing = streams, consumers, False

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.period_s)
