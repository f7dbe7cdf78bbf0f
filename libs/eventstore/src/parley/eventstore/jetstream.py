"""The default event store: one JetStream stream, one subject per aggregate stream.

Position is the JetStream stream sequence; the dense per-stream version lives in the event
body (and the ``Parley-Version`` header). Optimistic concurrency is
``Nats-Expected-Last-Subject-Sequence``; multi-event appends are atomic batches (NATS 2.12+).
"""

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
import stamina
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.api import StorageType
from nats.js.kv import KeyValue

from parley.contracts import subjects
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore._codec import check_append
from parley.eventstore._codec import check_stream
from parley.eventstore._codec import encode_within
from parley.eventstore._codec import safe_key
from parley.eventstore._jsdirect import DRIVER_ERRORS
from parley.eventstore._jsdirect import DirectGet
from parley.eventstore._jsdirect import Tail
from parley.eventstore._jsfeed import JetStreamFeed
from parley.eventstore._jsfeed import TapRouter
from parley.eventstore.locks import KeyedLock
from parley.eventstore.port import ANY_VERSION
from parley.eventstore.port import NO_STREAM
from parley.eventstore.port import AppendResult
from parley.eventstore.port import ConcurrencyConflict
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import EventStoreUnavailable
from parley.eventstore.port import Subscription
from parley.eventstore.repository import backoff

__all__ = ["JetStreamEventStore"]

_decode_reply = msgspec.json.Decoder(dict[str, Any]).decode
"""A JetStream API answer or publish acknowledgement (a JSON object)."""

_DUPLICATE_WINDOW_NS = 120 * 10**9
_HEADROOM = 4096  # headers and envelope growth above max_event_bytes
_STREAM_NOT_FOUND = 10059
# "wrong last sequence" (single and batch) and "batch contains duplicate message id": the
# answer a retried append gets when its first try succeeded. Compare ids before conflicting.
_MAYBE_RETRY = frozenset({10071, 10164, 10201})
_ATTEMPTS = 8  # batches the server dropped uncommitted
_OPEN_WAIT_S = 30.0
"""How long opening waits for the stream to answer (a cluster electing its leader)."""
_ANY_VERSION_ATTEMPTS = 64
"""An ANY_VERSION append keeps versions dense, so it races the stream's other writers; it
retries (with the repository's random pause, :func:`~parley.eventstore.repository.backoff`)
until it lands rather than reporting a conflict its caller never asked to check.

This loop stays in the adapter: the port promises that ANY_VERSION never conflicts, and
JetStream has no "append at the end" that keeps a dense per-stream version, so the adapter
builds it from expected-sequence appends. :class:`~parley.eventstore.repository.Repository`
retries what callers asked to check (a decision on a stale state), which is another thing."""
_BATCH_INCOMPLETE = 10176
# The server keeps at most 50 batches in flight per stream and drops the excess.
_BATCHES_IN_FLIGHT = 32


_TAILS_KEPT = 50_000
"""Stream tails remembered to skip a lookup before an append (about 100 bytes each)."""


class JetStreamEventStore:
    """Event store on a JetStream stream (default ``PARLEY_EVENTS``) with subjects
    ``parley.evt.>``."""

    def __init__(
        self,
        nc: Client,
        *,
        stream_name: str = "PARLEY_EVENTS",
        max_event_bytes: int = 1_048_576,
        owns_connection: bool = False,
        checkpoint_bucket: str = "parley_checkpoints",
        timeout: float = 5.0,
        replicas: int = 1,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=timeout)
        self._stream = stream_name
        self._max = max_event_bytes
        self._owns = owns_connection
        self._bucket = checkpoint_bucket
        self._timeout = timeout
        self._replicas = replicas
        self._atomic = False
        self._tails: dict[str, Tail] = {}
        self._kv: KeyValue | None = None
        self._router = TapRouter(nc)
        self._feeds: set[JetStreamFeed] = set()
        self._batches = asyncio.Semaphore(_BATCHES_IN_FLIGHT)
        self._appending = KeyedLock()
        self._direct = DirectGet(nc, stream_name, timeout)

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        nc: Client | None = None,
        stream_name: str = "PARLEY_EVENTS",
        max_event_bytes: int = 1_048_576,
        duplicate_window_ns: int = _DUPLICATE_WINDOW_NS,
        replicas: int = 1,
    ) -> "JetStreamEventStore":
        """Connect (or reuse ``nc``) and create the JetStream stream if it is missing (with
        ``replicas`` copies, as the checkpoint bucket)."""
        owns = nc is None
        if nc is None:
            try:
                nc = await nats.connect(url or "nats://127.0.0.1:4222", connect_timeout=5)
            except (*DRIVER_ERRORS, OSError) as exc:
                raise EventStoreUnavailable(
                    f"cannot reach NATS at {url}: {exc!r}; start nats-server with JetStream "
                    "or set PARLEY_NATS_URL"
                ) from exc
        store = cls(
            nc,
            stream_name=stream_name,
            max_event_bytes=max_event_bytes,
            owns_connection=owns,
            replicas=replicas,
        )
        try:
            # a cluster's stream has no leader for a few seconds after it is made or loses a
            # node, and several processes make it at once: wait that out, not longer
            async for attempt in stamina.retry_context(
                on=EventStoreUnavailable, attempts=None, timeout=_OPEN_WAIT_S, wait_max=2.0
            ):
                with attempt:
                    await store._ensure_stream(duplicate_window_ns)
        except BaseException:
            await store.close()
            raise
        return store

    # -- the port ---------------------------------------------------------------------------

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append ``events`` atomically if ``stream`` is at ``expected_version``."""
        check_append(stream, events)
        if len(events) > 1 and not self._atomic:
            raise EventStoreError(
                f"JetStream stream {self._stream} has no atomic batch publish (needs "
                "nats-server 2.12+ and allow_atomic); append one event per call"
            )
        subject = subjects.events(stream)
        if expected_version != ANY_VERSION:
            return await self._append(stream, subject, events, expected_version)
        # This process's appends at the end of one stream go one after another, each on the
        # tail the one before it wrote: racing each other they would all miss but one, again
        # and again (200 bidders' deliveries in one conversation).
        async with self._appending.hold(subject):
            return await self._append(stream, subject, events, expected_version)

    async def _append(
        self, stream: str, subject: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        anywhere = expected_version == ANY_VERSION
        attempts = _ANY_VERSION_ATTEMPTS if anywhere else _ATTEMPTS
        hinted, last = self._hint(subject, expected_version)
        lost = 0  # races lost on a tail read from the server (not on this process's hint)
        at_once = True  # a stale remembered tail is read and published on again, once, at once
        for _ in range(attempts):
            if not hinted:
                if lost:
                    await backoff(lost - 1)
                last = await self._direct.last(subject)
            from_hint, hinted = hinted, False
            current = last.version if last else 0
            if last is not None and last.id == events[-1].id:
                return AppendResult(last.version, last.seq)  # already stored: a retry
            if expected_version not in (ANY_VERSION, current):
                raise ConcurrencyConflict(stream, expected_version, current)
            bodies = [
                encode_within(Event.record(e, stream=stream, version=current + i), self._max)
                for i, e in enumerate(events, 1)
            ]
            ack = await self._publish(subject, events, bodies, current, last.seq if last else 0)
            error = ack.get("error")
            if error is not None and error.get("err_code") == _BATCH_INCOMPLETE:
                continue  # the server dropped the batch uncommitted: safe to send again
            if error is None:
                if ack.get("duplicate"):
                    return await self._direct.recorded_at(int(ack["seq"]), stream)
                result = AppendResult(current + len(events), int(ack["seq"]))
                self._remember(subject, Tail(events[-1].id, result.version, result.position))
                return result
            if error.get("err_code") not in _MAYBE_RETRY:
                raise EventStoreError(f"JetStream refused the append to {stream!r}: {error}")
            last = await self._direct.last(subject)
            if last is not None and last.id == events[-1].id:
                return AppendResult(last.version, last.seq)
            if not anywhere:
                raise ConcurrencyConflict(stream, expected_version, last.version if last else 0)
            if from_hint and at_once:  # another process wrote since: on the tail just read
                hinted, at_once = True, False
            else:
                lost += 1  # a race on a fresh tail: pause before the next look
        if expected_version != ANY_VERSION:
            raise EventStoreUnavailable(f"JetStream kept dropping the batch for {stream!r}")
        raise ConcurrencyConflict(stream, expected_version, last.version if last else 0)

    async def read(self, stream: str, from_version: int = 1) -> list[Event]:
        """Events of ``stream`` from ``from_version`` on, in version order ([] if none)."""
        check_stream(stream)
        subject = subjects.events(stream)
        events = None
        known = self._tails.get(subject)
        if known is not None and 0 < known.version < from_version:
            # a tail read after a lost race: start at the last event this process wrote or
            # read there, not at the stream's first (a busy conversation is hundreds of
            # events, each a message); it is checked to be there, else read from the first
            events = await self._direct.events(stream, subject, from_version, after=known)
        if events is None:  # from the first (without a hint the read always answers)
            events = await self._direct.events(stream, subject, from_version) or []
        if events:
            tail = events[-1]
            self._remember(subject, Tail(tail.id, tail.version, tail.position))
        return events

    async def last_position(self) -> int:
        """Global position of the newest event in the store (0 when empty)."""
        info = await self._api(f"STREAM.INFO.{self._stream}")
        if (error := info.get("error")) is not None:
            if error.get("err_code") == _STREAM_NOT_FOUND:  # no stream (yet): no events
                return 0
            # e.g. a cluster's stream without a leader for a moment
            raise EventStoreUnavailable(f"JetStream cannot tell the stream's state: {error}")
        return int(info["state"]["last_seq"])

    async def next_position(self, after: int, categories: Sequence[str]) -> int | None:
        """Position of the first event after ``after`` in a stream of ``categories``."""
        found = [
            await self._direct.first_after(after, subjects.events_of_category(category))
            for category in categories
        ]
        return min((seq for seq in found if seq is not None), default=None)

    def subscribe(
        self, from_position: int = 0, categories: Sequence[str] | None = None
    ) -> Subscription:
        """Events after ``from_position``, catch-up then live, in position order."""
        feed = _TrackedFeed(
            self, self._nc, self._router, self._stream, from_position, categories, self._timeout
        )
        self._feeds.add(feed)
        return feed

    async def load_checkpoint(self, name: str) -> int:
        """The position subscriber ``name`` last saved (0 if none)."""
        kv = await self._checkpoints()
        try:
            entry = await kv.get(safe_key(name))
        except nats.js.errors.KeyNotFoundError:
            return 0
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(f"could not load checkpoint {name!r}: {exc!r}") from exc
        return int(entry.value or b"0")

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Save subscriber ``name``'s position."""
        kv = await self._checkpoints()
        try:
            await kv.put(safe_key(name), str(int(position)).encode())
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(f"could not save checkpoint {name!r}: {exc!r}") from exc

    def resume(self) -> None:
        """Restart every open subscription from the last event it delivered: call it when
        the connection came back, since the server may have restarted and forgotten their
        consumers (they would otherwise stay silent until their heartbeat check, 15 s)."""
        for feed in self._feeds:
            feed.restart()

    async def close(self) -> None:
        """Stop open subscriptions; close the connection if this store opened it."""
        for feed in list(self._feeds):
            await feed.close()
        await self._direct.stop()
        if self._owns and not self._nc.is_closed:
            await self._nc.close()

    # -- internals --------------------------------------------------------------------------

    async def _api(self, verb: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = msgspec.json.encode(payload) if payload is not None else b""
        try:
            msg = await self._nc.request(f"$JS.API.{verb}", body, timeout=self._timeout)
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(f"JetStream did not answer {verb}: {exc!r}") from exc
        reply: dict[str, Any] = _decode_reply(msg.data)
        if "error" in reply and verb != f"STREAM.INFO.{self._stream}":
            raise EventStoreError(f"JetStream refused {verb}: {reply['error']}")
        return reply

    async def _ensure_stream(self, duplicate_window_ns: int) -> None:
        wanted = {
            "name": self._stream,
            "subjects": [subjects.EVENTS_ALL],
            "retention": "limits",
            "storage": "file",
            "discard": "old",
            "num_replicas": self._replicas,
            "allow_direct": True,
            "allow_atomic": True,
            "duplicate_window": duplicate_window_ns,
            "max_msg_size": self._max + _HEADROOM,
        }
        info = await self._api(f"STREAM.INFO.{self._stream}")
        error = info.get("error")
        if error is not None and error.get("err_code") != _STREAM_NOT_FOUND:
            raise EventStoreUnavailable(f"JetStream refused STREAM.INFO: {error}")
        if error is not None:
            try:
                info = await self._api(f"STREAM.CREATE.{self._stream}", wanted)
            except EventStoreError:
                info = await self._api(f"STREAM.INFO.{self._stream}")  # lost a creation race
                if "error" in info:
                    raise
        config: dict[str, Any] = info["config"]
        if subjects.EVENTS_ALL not in config.get("subjects", []):
            raise EventStoreError(
                f"JetStream stream {self._stream} exists with subjects {config.get('subjects')}, "
                f"not {subjects.EVENTS_ALL}: pick another stream_name"
            )
        limit = config.get("max_msg_size", -1)
        if (
            not config.get("allow_atomic")
            or not config.get("allow_direct")
            or 0 <= limit < self._max + _HEADROOM
        ):
            update = {**config, "allow_atomic": True, "allow_direct": True}
            update["max_msg_size"] = max(limit, self._max + _HEADROOM) if limit >= 0 else -1
            with contextlib.suppress(EventStoreError):
                config = (await self._api(f"STREAM.UPDATE.{self._stream}", update))["config"]
        self._atomic = bool(config.get("allow_atomic"))

    def _hint(self, subject: str, expected_version: int) -> tuple[bool, Tail | None]:
        """The stream's tail as this process last saw it, if it matches ``expected_version``
        (any tail matches ``ANY_VERSION``).

        Saves the direct get before a publish. A stale hint is harmless: the server checks
        ``Nats-Expected-Last-Subject-Sequence`` and the append falls back to a fresh look
        (an ``ANY_VERSION`` append publishes again at once on the tail that look read).
        """
        known = self._tails.get(subject)
        if known is None:
            return expected_version == NO_STREAM, None
        matches = expected_version in (ANY_VERSION, known.version)
        return matches, known if known.version else None

    def know_tail(self, stream: str, version: int, position: int, event_id: str) -> None:
        """Take ``stream``'s tail as another process says it left it, unless this process
        knows a later one (see :meth:`_hint`: a stale hint is caught by the server)."""
        subject = subjects.events(stream)
        known = self._tails.get(subject)
        if known is None or known.version < version:
            self._remember(subject, Tail(event_id, version, position))

    def _remember(self, subject: str, last: Tail) -> None:
        tails = self._tails
        tails.pop(subject, None)
        tails[subject] = last
        if len(tails) > _TAILS_KEPT:
            del tails[next(iter(tails))]  # the least recently written

    async def _publish(
        self,
        subject: str,
        events: Sequence[NewEvent],
        bodies: list[bytes],
        current: int,
        last_seq: int,
    ) -> dict[str, Any]:
        """Publish ``bodies`` (one message, or one atomic batch) and return the ack."""
        expected = str(last_seq)
        try:
            if len(bodies) == 1:
                headers = {
                    "Nats-Msg-Id": events[0].id,
                    "Nats-Expected-Last-Subject-Sequence": expected,
                    "Parley-Version": str(current + 1),
                }
                msg = await self._nc.request(
                    subject, bodies[0], timeout=self._timeout, headers=headers
                )
            else:
                async with self._batches:
                    msg = await self._publish_batch(subject, events, bodies, current, expected)
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(
                f"JetStream did not acknowledge the append: {exc!r}"
            ) from exc
        ack: dict[str, Any] = _decode_reply(msg.data)  # msgspec: a fraction of json.loads
        return ack

    async def _publish_batch(
        self,
        subject: str,
        events: Sequence[NewEvent],
        bodies: list[bytes],
        current: int,
        expected: str,
    ) -> Any:
        """Send one atomic batch; only the commit (the last message) is acknowledged."""
        batch = uuid.uuid4().hex
        for i, (event, body) in enumerate(zip(events, bodies, strict=True), 1):
            headers = {
                "Nats-Msg-Id": event.id,
                "Parley-Version": str(current + i),
                "Nats-Batch-Id": batch,
                "Nats-Batch-Sequence": str(i),
            }
            if i == 1:
                headers["Nats-Expected-Last-Subject-Sequence"] = expected
            if i < len(bodies):
                await self._nc.publish(subject, body, headers=headers)
        headers["Nats-Batch-Commit"] = "1"
        return await self._nc.request(subject, bodies[-1], timeout=self._timeout, headers=headers)

    async def _checkpoints(self) -> KeyValue:
        if self._kv is None:
            try:
                try:
                    self._kv = await self._js.key_value(self._bucket)
                except nats.js.errors.BucketNotFoundError:
                    config = KeyValueConfig(
                        bucket=self._bucket,
                        history=1,
                        storage=StorageType.FILE,
                        replicas=self._replicas,
                    )
                    self._kv = await self._js.create_key_value(config)
            except DRIVER_ERRORS as exc:
                raise EventStoreUnavailable(
                    f"could not open checkpoint bucket {self._bucket!r}: {exc!r}"
                ) from exc
        return self._kv


class _TrackedFeed(JetStreamFeed):
    """A feed the store closes with itself."""

    def __init__(self, store: JetStreamEventStore, *args: Any) -> None:
        super().__init__(*args)
        self._store = store

    async def close(self) -> None:
        self._store._feeds.discard(self)
        await super().close()
