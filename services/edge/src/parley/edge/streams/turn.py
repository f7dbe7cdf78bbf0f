"""A chat turn's live frames (:class:`TurnDelta`), for SSE and WebSocket clients.

A live feed subscribes (core NATS) to ``parley.stream.turn.<turn id>`` *before* the chat
command is sent, so no frame is missed. A resumed feed reads the same frames back from the
JetStream memory stream ``PARLEY_DELTAS`` with an ordered, ephemeral consumer, from the first
frame on. Either way :meth:`TurnFeed.frames` yields frames in ``seq`` order, skips those the
client has seen, stops after ``end`` or ``error``, and ends a silent stream with an ``error``
frame (``seq`` 0, ``TIMEOUT``) instead of hanging.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import Chat
from parley.contracts.runtime import RuntimeReply
from parley.contracts.runtime import TurnDelta
from parley.contracts.runtime import turn_subject
from parley.contracts.subjects import DELTA_STREAM
from parley.edge.dependencies import Writes

__all__ = [
    "FINAL_TYPES",
    "TurnFeed",
    "client_frame",
    "idle_frame",
    "parse_last_event_id",
    "start_turn",
]

log = logging.getLogger(__name__)

FINAL_TYPES = frozenset({"end", "error"})
"""Frame types after which a turn sends nothing more."""
_decode = msgspec.json.Decoder(TurnDelta).decode


def idle_frame(turn_id: str, idle: float) -> TurnDelta:
    """The frame that ends a stream silent for ``idle`` seconds (``seq`` 0: not resumable)."""
    return TurnDelta(
        seq=0,
        type="error",
        turn_id=turn_id,
        data={
            "code": ErrorCode.TIMEOUT.value,
            "message": f"no frame from the turn for {idle:g}s; read the conversation, or"
            " resume with Last-Event-ID",
        },
    )


def parse_last_event_id(raw: str | None, turn_id: str | None) -> tuple[str | None, int]:
    """``<turn id>:<seq>`` (or a bare ``<seq>``) → (turn id, last seq seen).

    Raises:
        ValueError: not of that form, or naming another turn than ``turn_id``.
    """
    if raw is None or not raw.strip():
        return turn_id, 0
    head, sep, tail = raw.strip().rpartition(":")
    if not sep:
        head, tail = "", raw.strip()
    if not tail.isascii() or not tail.isdigit() or len(tail) > 12:
        raise ValueError("Last-Event-ID must be `<turn_id>:<seq>` as sent in the stream's `id:`")
    if head and turn_id and head != turn_id:
        raise ValueError(f"Last-Event-ID names turn {head[:64]!r}, not {turn_id[:64]!r}")
    return head or turn_id, int(tail)


class TurnFeed:
    """The frames of one turn, queued as they arrive from NATS."""

    def __init__(self, turn_id: str) -> None:
        self.turn_id = turn_id
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._sub: Subscription | None = None
        self._closed = False

    @classmethod
    async def live(cls, nc: Client, turn_id: str) -> "TurnFeed":
        """Subscribe to the turn's subject; call before sending the chat command."""
        feed = cls(turn_id)
        feed._sub = await nc.subscribe(turn_subject(turn_id), cb=feed._received)
        return feed

    @classmethod
    async def replay(cls, nc: Client, turn_id: str) -> "TurnFeed":
        """Read the turn's kept frames from the first, then follow the live ones.

        Raises:
            nats.js.errors.NotFoundError: the delta stream does not exist (no runtime yet).
        """
        feed = cls(turn_id)
        feed._sub = await nc.jetstream().subscribe(
            turn_subject(turn_id),
            stream=DELTA_STREAM,
            cb=feed._received,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        return feed

    async def _received(self, msg: Msg) -> None:
        if not self._closed:
            self._queue.put_nowait(msg.data)

    async def close(self) -> None:
        """Unsubscribe (twice is harmless)."""
        self._closed = True
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, asyncio.CancelledError):
                await sub.unsubscribe()

    async def frames(
        self, *, after: int = 0, idle: float = 60.0, tick: float | None = None
    ) -> AsyncIterator[TurnDelta | None]:
        """The turn's frames with ``seq > after``, through ``end`` or ``error``.

        Args:
            after: The last ``seq`` the client has seen.
            idle: Seconds without a frame before the feed ends with :func:`idle_frame`.
            tick: When set, yield ``None`` after this many silent seconds (keep-alives).
        """
        loop = asyncio.get_running_loop()
        last, deadline = after, loop.time() + idle
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield idle_frame(self.turn_id, idle)
                    return
                wait = min(remaining, tick) if tick else remaining
                try:
                    async with asyncio.timeout(wait):  # unlike wait_for, never swallows a
                        raw = await self._queue.get()  # disconnect's cancellation
                except TimeoutError:
                    if tick and loop.time() < deadline:
                        yield None
                    continue
                frame = _frame(raw)
                if frame is None or frame.seq <= last:
                    continue  # unreadable, or already seen
                last, deadline = frame.seq, loop.time() + idle
                yield frame
                if frame.type in FINAL_TYPES:
                    return
        finally:
            await self.close()


async def start_turn(writes: Writes, command: Chat) -> tuple[TurnFeed, RuntimeReply]:
    """Send ``command`` as a streamed turn: its live feed, subscribed before the command is
    sent (no frame missed), and the runtime's reply. A failed send closes the feed."""
    edge = writes.edge
    command.stream = True
    command.min_position = edge.positions.runtime
    feed = await TurnFeed.live(edge.nc, command.turn_id)
    try:
        reply = await writes.runtime(
            "chat", command, within=edge.settings.chat_timeout, strict=False, wait=False
        )
    except BaseException:
        await feed.close()
        raise
    return feed, reply


def _frame(raw: bytes) -> TurnDelta | None:
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        log.warning("skipped an unreadable turn frame: %r", raw[:200])
        return None


def client_frame(frame: TurnDelta, conversation_id: str | None) -> dict[str, Any]:
    """A frame's ``data`` as clients get it: with ``turn_id`` and ``conversation_id``."""
    data = dict(frame.data)
    data["turn_id"] = frame.turn_id
    data["conversation_id"] = data.get("conversation_id") or conversation_id
    return data
