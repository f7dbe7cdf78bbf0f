"""``/ws``: event subscriptions over one WebSocket.

Client → server (JSON text frames)::

    {"type": "subscribe", "id": "s1", "filter": {"types": ["agent.*"], "agent_ids": [...],
     "performatives": ["request"], "streams": [...], "namespace": "default"},
     "from_position": 0}
    {"type": "unsubscribe", "id": "s1"}     (or "subscription_id": "s1", as Caxton names it)
    {"type": "ping"}

Every subscription carries only events of the caller's namespaces (and ``apikey.*`` events
only to key managers), whatever its filter says; a handshake's ``X-Parley-Namespace`` is the
default of its subscriptions' ``namespace``.

Server → client: ``subscribed`` (with the start position), ``event`` (per matching event, in
position order per subscription), ``unsubscribed``, ``pong``, ``error``. A bad message gets an
``error`` frame and the socket stays open. Each socket has a bounded send queue: a consumer
that falls that far behind gets a ``SLOW_CONSUMER`` error and the socket is closed (1013).
"""

import asyncio
import contextlib
from collections.abc import Callable
from collections.abc import Mapping
from typing import Annotated
from typing import Any

import msgspec
from litestar import WebSocket
from litestar import websocket
from litestar.di import NamedDependency
from litestar.status_codes import WS_1013_TRY_AGAIN_LATER
from msgspec import Meta

from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Store
from parley.edge.http.auth import EVERY_NAMESPACE
from parley.edge.http.auth import principal
from parley.edge.http.body import BodyError
from parley.edge.http.body import decode_json
from parley.edge.streams.filters import MAX_PATTERNS
from parley.edge.streams.filters import EventFilter
from parley.edge.streams.filters import FilterError
from parley.edge.streams.filters import encode_event
from parley.edge.streams.filters import parse_position
from parley.edge.streams.hub import Hub
from parley.edge.streams.pump import Pump
from parley.eventstore.port import EventStore
from parley.identity.keyindex import KeyIndex
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal

__all__ = ["MAX_MESSAGE_BYTES", "MAX_SUBSCRIPTIONS", "SEND_QUEUE", "frame_bytes", "ws_routes"]

SEND_QUEUE = 4096
"""Frames a socket may have waiting to be sent before it counts as a slow consumer."""
MAX_SUBSCRIPTIONS = 64
"""Subscriptions one socket may hold at once."""
MAX_MESSAGE_BYTES = 65_536
"""Largest client message accepted."""
SLOW_CONSUMER = "SLOW_CONSUMER"
RECHECK_S = 1.0
"""Seconds between two checks that a key-authenticated socket's key still works."""

SubscriptionId = Annotated[str, Meta(min_length=1, max_length=128)]
_Values = Annotated[list[str], Meta(max_length=MAX_PATTERNS)]
_Position = Annotated[int, Meta(ge=0)]


class Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which events a subscription receives; every given field must match."""

    types: _Values = msgspec.field(default_factory=list)
    """Type globs: `agent.*`, `agent.state_changed`, `*.created`."""
    agent_ids: _Values = msgspec.field(default_factory=list)
    """Agent ids (the event's subject, `data.agent_id`, `data.receiver`, or a message's
    sender or receivers)."""
    performatives: _Values = msgspec.field(default_factory=list)
    """FIPA performatives of message events (`data.message.performative`)."""
    streams: _Values = msgspec.field(default_factory=list)
    """Exact stream names, e.g. `agent-<id>`."""
    namespace: str | None = None
    """Only events of this namespace (one of the caller's: no filter reaches past them)."""
    actors: _Values = msgspec.field(default_factory=list)
    """Ids of acting principals (the events' `actor`)."""


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=True):
    """Start a subscription."""

    id: SubscriptionId
    filter: Filter = msgspec.field(default_factory=Filter)
    from_position: _Position | None = None
    """Deliver events after this position (exclusive); absent: live only."""
    resume_from: _Position | None = None
    """Alias of `from_position`: the position of the last event the client saw."""


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type", forbid_unknown_fields=True):
    """Stop a subscription, named by `id` or `subscription_id` (Caxton's name for it)."""

    id: SubscriptionId | None = None
    subscription_id: SubscriptionId | None = None
    """Alias of `id`."""

    @property
    def named(self) -> str | None:
        """The subscription it names: `id`, else `subscription_id` (None: neither, or two
        different ones)."""
        if self.id is not None and self.subscription_id not in (None, self.id):
            return None
        return self.id or self.subscription_id


class Ping(msgspec.Struct, tag="ping", tag_field="type", forbid_unknown_fields=True):
    """Ask for a `pong`."""

    id: str | None = None


ClientMessage = Subscribe | Unsubscribe | Ping

_encode = msgspec.json.encode


@websocket("/ws", opt={EVERY_NAMESPACE: True})
async def events_socket(
    socket: WebSocket[Any, Any, Any],
    store: Store,
    hub: NamedDependency[Hub],
    keys: NamedDependency[KeyIndex],
) -> None:
    """Event subscriptions: subscribe/unsubscribe with filters, resume from a position."""
    await socket.accept()
    who = principal(socket)
    await _Session(socket, store, hub, who, lambda: keys.recheck(who)).run()


ws_routes = [events_socket]


class _Session:
    """One socket: its subscriptions and its bounded send queue."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        store: EventStore,
        hub: Hub,
        who: Principal,
        recheck: Callable[[], None],
    ) -> None:
        self._socket, self._store, self._who, self._recheck = socket, store, who, recheck
        self._hub = hub
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(SEND_QUEUE)
        self._pumps: dict[str, Pump] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._overflow = asyncio.Event()

    async def run(self) -> None:
        """Serve the socket until the client leaves or falls too far behind."""
        receiver = asyncio.create_task(self._receive())
        sender = asyncio.create_task(self._send())
        overflow = asyncio.create_task(self._overflow.wait())
        watch = asyncio.create_task(self._watch())
        try:
            await asyncio.wait(
                {receiver, sender, overflow, watch}, return_when=asyncio.FIRST_COMPLETED
            )
            if self._overflow.is_set() and not sender.done():
                await self._close_pumps()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await sender  # sends the error frame, then closes the socket
        finally:
            for task in (receiver, sender, overflow, watch):
                task.cancel()
            await asyncio.gather(receiver, sender, overflow, watch, return_exceptions=True)
            await self._close_pumps()

    async def _watch(self) -> None:
        """End the socket once its key is revoked or expires (checked every second)."""
        if not self._who.id.startswith("key:"):
            await asyncio.Event().wait()  # a JWT (or auth off) has no key to lose
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                self._recheck()
            except AuthenticationError as exc:
                await self._close_pumps()
                with contextlib.suppress(Exception):
                    await self._socket.send_text(
                        _error_frame(ErrorCode.UNAUTHORIZED, exc.message, None).decode()
                    )
                    await self._socket.close(4401, "credentials revoked or expired")
                return

    def _put(self, frame: bytes) -> None:
        if self._overflow.is_set():
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._overflow.set()
            while not self._queue.empty():  # drop the backlog: the error goes out next
                self._queue.get_nowait()
            self._queue.put_nowait(
                _error_frame(
                    SLOW_CONSUMER,
                    f"more than {SEND_QUEUE} frames waiting: read faster, or resubscribe "
                    "from the last position you saw",
                    None,
                )
            )
            self._queue.put_nowait(None)

    async def _send(self) -> None:
        queue, socket = self._queue, self._socket
        while True:
            frame = await queue.get()
            if frame is None:
                await socket.close(WS_1013_TRY_AGAIN_LATER, "slow consumer")
                return
            await socket.send_text(frame)

    async def _receive(self) -> None:
        while True:
            message = await self._socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await self._handle(frame_bytes(message))

    async def _handle(self, raw: bytes) -> None:
        if len(raw) > MAX_MESSAGE_BYTES:
            self._error(ErrorCode.INVALID_REQUEST, f"message over {MAX_MESSAGE_BYTES} bytes")
            return
        try:
            value = decode_json(raw)
        except BodyError as exc:
            self._error(ErrorCode.INVALID_REQUEST, str(exc))
            return
        sub_id = (
            (value.get("id") or value.get("subscription_id")) if isinstance(value, dict) else None
        )
        sub_id = sub_id if isinstance(sub_id, str) else None
        try:
            command = msgspec.convert(value, ClientMessage)
        except msgspec.ValidationError as exc:
            self._error(ErrorCode.INVALID_REQUEST, _explain(value, exc), sub_id)
            return
        if isinstance(command, Ping):
            self._put(_encode({"type": "pong", "id": command.id}))
        elif isinstance(command, Subscribe):
            await self._subscribe(command)
        elif (named := command.named) is None:
            message = (
                "name the subscription to stop by `id` or `subscription_id` (both: the same one)"
            )
            self._error(ErrorCode.INVALID_REQUEST, message, sub_id)
        else:
            await self._unsubscribe(named)

    async def _subscribe(self, command: Subscribe) -> None:
        sub_id = command.id
        if sub_id in self._pumps:
            self._error(ErrorCode.INVALID_REQUEST, f"subscription {sub_id!r} exists", sub_id)
            return
        if len(self._pumps) >= MAX_SUBSCRIPTIONS:
            self._error(
                ErrorCode.INVALID_REQUEST,
                f"at most {MAX_SUBSCRIPTIONS} subscriptions per socket",
                sub_id,
            )
            return
        given = command.filter
        try:
            event_filter = EventFilter.parse(
                given.types,
                given.agent_ids,
                given.streams,
                given.namespace or self._socket.headers.get("x-parley-namespace"),
                given.performatives,
                given.actors,
            ).within(self._who)
            given_at = "from_position" if command.from_position is not None else "resume_from"
            start = parse_position(getattr(command, given_at), given_at)
        except FilterError as exc:
            self._error(ErrorCode.INVALID_REQUEST, str(exc), sub_id)
            return
        if start is None:
            try:
                start = await self._store.last_position()
            except Exception:  # noqa: BLE001 - the store is down: tell this subscriber
                self._error(ErrorCode.SERVICE_UNAVAILABLE, "the event store is unavailable", sub_id)
                return
        prefix = b'{"type":"event","subscription":' + _encode(sub_id) + b',"event":'
        put = self._put

        def deliver(event: Event) -> None:
            put(prefix + encode_event(event) + b"}")

        pump = Pump(self._hub, start, event_filter, deliver, lambda exc: self._failed(sub_id, pump))
        self._pumps[sub_id] = pump
        self._put(_encode({"type": "subscribed", "id": sub_id, "position": start}))
        pump.start()

    async def _unsubscribe(self, sub_id: str) -> None:
        pump = self._pumps.pop(sub_id, None)
        if pump is None:
            self._error(ErrorCode.INVALID_REQUEST, f"no subscription {sub_id!r}", sub_id)
            return
        await pump.close()
        self._put(_encode({"type": "unsubscribed", "id": sub_id}))

    def _failed(self, sub_id: str, pump: Pump) -> None:
        """A subscription's feed broke: tell the client, who may resubscribe from its last
        position."""
        if self._pumps.get(sub_id) is not pump:
            return  # already unsubscribed
        del self._pumps[sub_id]
        task = asyncio.get_running_loop().create_task(pump.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._error(
            ErrorCode.SERVICE_UNAVAILABLE,
            "the subscription's event feed failed; subscribe again from the last position seen",
            sub_id,
        )

    async def _close_pumps(self) -> None:
        pumps, self._pumps = list(self._pumps.values()), {}
        await asyncio.gather(*(p.close() for p in pumps), *self._closing)

    def _error(self, code: str, message: str, sub_id: str | None = None) -> None:
        self._put(_error_frame(code, message, sub_id))


def frame_bytes(message: Mapping[str, object]) -> bytes:
    """A received frame's payload as bytes (text frames are UTF-8)."""
    data = message.get("bytes")
    if isinstance(data, bytes) and data:
        return data
    text = message.get("text")
    return text.encode() if isinstance(text, str) else b""


def _error_frame(code: str, message: str, sub_id: str | None) -> bytes:
    return _encode({"type": "error", "code": code, "message": message, "id": sub_id})


def _explain(value: Any, exc: msgspec.ValidationError) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(value, dict):
        return "a message must be a JSON object with a `type`"
    if kind not in ("subscribe", "unsubscribe", "ping"):
        return f"unknown message type {kind!r}: use subscribe, unsubscribe or ping"
    return f"invalid {kind} message: {exc}"
