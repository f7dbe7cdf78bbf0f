"""The external events relay: every stored event again, on its namespace's subject.

An event's subject (``parley.evt.<category>.<id>``) names no namespace, so NATS permissions
cannot hand another system the events of its namespace only. The relay re-publishes each
event of ``PARLEY_EVENTS`` whose namespace has an external NATS account (the settings'
``ext_namespaces``) — the same CloudEvents JSON bytes and headers, with the event's
``traceparent`` — to ``parley.ext.<namespace>.evt.<category>.<id>``. That subject is a
service the namespace's account exports: the message lands in that account's JetStream stream
``PARLEY_EXT_EVENTS`` (limits from the settings; the relay creates it through
``$JS.ext.<namespace>.API``), where the account's ``external`` user reads it, live or from
the start. Nothing the external user does in its account (a consumer pushing to any subject
it likes) reaches the services' account.

Once and in order, across restarts and any number of relay processes:

- The relay is the durable consumer ``parley-ext-relay`` of ``PARLEY_EVENTS``: a restarted
  relay resumes where the last acknowledgement left it.
- The consumer lets one batch be unacknowledged at a time (``max_ack_pending`` = the batch),
  so however many processes pull, batches are relayed one after another, in store order.
- A batch is published in order, and acknowledged (``AckPolicy.ALL``, on its last message)
  only once it is known to be stored. Usually only each namespace's last copy asks its stream
  for an answer: its sequence must be the stream's tail as this relay last wrote it plus the
  copies sent there (one connection, in order: a lost copy shows as a shorter step). When
  that does not hold, or the tail is not known yet, the batch is sent again with an answer
  for every copy (the stream drops the copies it has), and what failed is handed back.
- A batch that was not full is followed by a pause (``ext_events_linger``, 50 ms by
  default): under a steady trickle the relay wakes a few times a second for many events
  instead of once per event, and an external reader sees an event that much later at most.
- A batch relayed but not acknowledged (its process died) comes back after the ack wait and
  is dropped by the streams' de-duplication: ``Nats-Msg-Id`` is the event id, and the window
  (2 minutes) is longer than the ack wait.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any
from typing import NamedTuple

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from nats.js.api import ConsumerConfig
from nats.js.api import DeliverPolicy
from nats.js.api import DiscardPolicy
from nats.js.api import PubAck
from nats.js.api import RetentionPolicy
from nats.js.api import StorageType
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from parley.contracts import subjects
from parley.kit.app import Connections
from parley.kit.workqueue import hand_back
from parley.kit.workqueue import stop_loop
from parley.registry.settings import RegistrySettings

__all__ = ["Relay", "relayed_headers", "start_relay"]

log = logging.getLogger(__name__)

ACK_WAIT_S = 30.0
"""How long a relayed batch may stay unacknowledged before it is handed to another relay."""
DUPLICATE_WINDOW_S = 120.0
"""The target stream's de-duplication window; longer than :data:`ACK_WAIT_S`."""
_FETCH_WAIT_S = 5.0
_PUBLISH_WAIT_S = 10.0
_RETRY_PAUSE_S = 1.0
_CONTROL_HEADERS = ("Nats-Expected-", "Nats-Batch-")
"""Headers that steered the original append and mean nothing (or harm) on the copy."""


class _Envelope(msgspec.Struct):
    """What the relay reads of an event: where it goes and what it carries along."""

    id: str
    namespace: str = "default"
    traceparent: str | None = None


_decode = msgspec.json.Decoder(_Envelope).decode


class _Route(NamedTuple):
    """Where one event's copy goes."""

    namespace: str
    subject: str
    headers: dict[str, str]


def _landed(answer: "asyncio.Future[Any]") -> bool:
    """Whether a publish was answered (neither pending, cancelled nor failed)."""
    return answer.done() and not answer.cancelled() and answer.exception() is None


def relayed_headers(headers: dict[str, str] | None, envelope: _Envelope) -> dict[str, str]:
    """The headers of an event's copy: the original's, minus the append's own controls, with
    ``Nats-Msg-Id`` = the event id and the event's ``traceparent``."""
    kept = {k: v for k, v in (headers or {}).items() if not k.startswith(_CONTROL_HEADERS)}
    kept["Nats-Msg-Id"] = envelope.id
    if envelope.traceparent:
        kept.setdefault("traceparent", envelope.traceparent)
    return kept


class Relay:
    """Relays ``PARLEY_EVENTS`` to the ``PARLEY_EXT_EVENTS`` of ``namespaces`` until stopped."""

    def __init__(
        self,
        nc: Client,
        *,
        namespaces: Iterable[str],
        max_age: float,
        max_bytes: int,
        batch: int = 256,
        linger: float = 0.0,
    ) -> None:
        self.nc, self.js, self.namespaces = nc, nc.jetstream(), frozenset(namespaces)
        self.max_age, self.max_bytes, self.batch = max_age, max_bytes, batch
        self.linger = linger
        """Seconds to wait after a batch that was not full, so the next one gathers more."""
        self.relayed = 0
        """Events this process handed on: relayed, or passed over (no external account)."""
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._tails: dict[str, int] = {}
        """Namespace → the last sequence of its stream this relay wrote (see
        :meth:`_relay_fast`)."""

    async def start(self) -> None:
        """Create (or update) the namespaces' streams and the durable consumer; start."""
        for namespace in sorted(self.namespaces):
            try:
                await self._ensure_stream(namespace)
            except nats.errors.Error as exc:
                log.warning(
                    "no events relay to namespace %s: its external NATS account refused or "
                    "did not answer (%r); see deploy/nats/nats-server.conf",
                    namespace,
                    exc,
                )
                self.namespaces -= {namespace}
        if not self.namespaces:  # keep the durable where it is until there is somewhere to go
            return
        config = ConsumerConfig(
            name=subjects.EXT_RELAY_CONSUMER,
            durable_name=subjects.EXT_RELAY_CONSUMER,
            filter_subject=subjects.EVENTS_ALL,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.ALL,
            ack_wait=ACK_WAIT_S,
            max_ack_pending=self.batch,
        )
        await self.js.add_consumer(subjects.EVENT_STREAM, config)
        self._sub = await self.js.pull_subscribe_bind(
            durable=subjects.EXT_RELAY_CONSUMER, stream=subjects.EVENT_STREAM
        )
        self._loop = asyncio.create_task(self._pull(), name="ext-events-relay")

    async def stop(self) -> None:
        """Stop relaying; an unacknowledged batch comes back to the next relay.

        The loop is cancelled and told to stop (:func:`~parley.kit.workqueue.stop_loop` says
        why both).
        """
        self._stopping = True
        await stop_loop(self._loop, "the events relay")
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _ensure_stream(self, namespace: str) -> None:
        """Create (or update to the settings' limits) ``namespace``'s stream in its account."""
        js = self.nc.jetstream(prefix=subjects.ext_js_api(namespace))
        config = StreamConfig(
            name=subjects.EXT_EVENT_STREAM,
            subjects=[subjects.ext_events(namespace)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age or None,
            max_bytes=self.max_bytes,
            duplicate_window=min(DUPLICATE_WINDOW_S, self.max_age or DUPLICATE_WINDOW_S),
        )
        try:
            await js.add_stream(config)
        except BadRequestError:  # it exists with other limits: take the settings'
            await js.update_stream(config)

    async def _pull(self) -> None:
        assert self._sub is not None
        while not self._stopping:
            try:
                messages = await self._sub.fetch(self.batch, timeout=_FETCH_WAIT_S)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the events relay could not fetch; retrying")
                await asyncio.sleep(_RETRY_PAUSE_S)
                continue
            if self._stopping:  # hand the batch back at once, to the next relay
                for msg in messages:
                    await hand_back(msg, None)
                return
            try:
                await self._relay(messages)
            except asyncio.CancelledError:
                raise
            except Exception:  # the batch comes back after the ack wait
                log.exception("the events relay failed a batch; retrying")
                self._tails.clear()
                await asyncio.sleep(_RETRY_PAUSE_S)
                continue
            if len(messages) < self.batch and self.linger:
                await asyncio.sleep(self.linger)

    async def _relay(self, messages: list[Msg]) -> None:
        """Relay ``messages`` in order: on the fast path when every target's tail is known and
        the batch lands whole, else one checked publish each."""
        if not messages:
            return
        routes = [self._route(msg) for msg in messages]
        if await self._relay_fast(messages, routes):
            await messages[-1].ack()  # AckPolicy.ALL: this and every one before
            self.relayed += len(messages)
            return
        await self._relay_checked(messages, routes)

    def _route(self, msg: Msg) -> _Route | None:
        """Where ``msg`` goes, or None: nobody outside reads its namespace (or it is not an
        event)."""
        try:
            envelope = _decode(msg.data)
        except msgspec.DecodeError:
            log.warning("the events relay skips an unreadable event on %s", msg.subject)
            return None
        if envelope.namespace not in self.namespaces:
            return None
        return _Route(
            envelope.namespace,
            subjects.ext_event(envelope.namespace, msg.subject),
            relayed_headers(msg.headers, envelope),
        )

    async def _relay_fast(self, messages: list[Msg], routes: list[_Route | None]) -> bool:
        """Publish the batch without an answer per event; only each namespace's last event
        is acknowledged by its stream. The batch landed whole when that acknowledgement's
        sequence is the stream's tail (as this relay last saw it) plus the events sent there:
        one connection, in order, so a lost or refused event shows as a shorter step (a
        re-sent one as a duplicate). Anything else returns False, and the checked path sends
        the batch again (the stream drops the copies by ``Nats-Msg-Id``)."""
        last: dict[str, int] = {}
        for index, route in enumerate(routes):
            if route is not None:
                last[route.namespace] = index
        if not last.keys() <= self._tails.keys():
            return False  # a namespace's tail is unknown: the checked path learns it
        sent = dict.fromkeys(last, 0)
        answers: dict[str, asyncio.Future[PubAck]] = {}
        for index, (msg, route) in enumerate(zip(messages, routes, strict=True)):
            if route is None:
                continue
            sent[route.namespace] += 1
            if last[route.namespace] == index:
                answers[route.namespace] = await self.js.publish_async(
                    route.subject, msg.data, headers=route.headers
                )
            else:
                await self.nc.publish(route.subject, msg.data, headers=route.headers)
        if answers:
            await asyncio.wait(answers.values(), timeout=_PUBLISH_WAIT_S)
        whole = True
        for namespace, answer in answers.items():
            ack = answer.result() if _landed(answer) else None
            if ack is None or ack.duplicate or ack.seq != self._tails[namespace] + sent[namespace]:
                whole = False
                del self._tails[namespace]
                if not answer.done():
                    answer.cancel()
            else:
                self._tails[namespace] = ack.seq
        return whole

    async def _relay_checked(self, messages: list[Msg], routes: list[_Route | None]) -> None:
        """Publish ``messages`` in order, each acknowledged by its stream; acknowledge the
        relayed prefix, hand back the rest. Learns each namespace's tail."""
        pending: list[asyncio.Future[PubAck] | None] = []
        for msg, route in zip(messages, routes, strict=True):
            if route is None:
                pending.append(None)
                continue
            pending.append(
                await self.js.publish_async(route.subject, msg.data, headers=route.headers)
            )
        acks = [p for p in pending if p is not None]
        if acks:
            await asyncio.wait(acks, timeout=_PUBLISH_WAIT_S)
        relayed = 0
        for future, route in zip(pending, routes, strict=True):
            if future is not None and not _landed(future):
                break
            relayed += 1
            if future is not None and route is not None:
                ack = future.result()
                if ack.duplicate:  # its sequence is the first copy's, not the tail
                    self._tails.pop(route.namespace, None)
                else:
                    self._tails[route.namespace] = ack.seq
        if relayed:
            await messages[relayed - 1].ack()  # AckPolicy.ALL: this and every one before
            self.relayed += relayed
        if relayed < len(messages):
            failed = pending[relayed]
            answered = failed is not None and failed.done() and not failed.cancelled()
            reason = failed.exception() if failed is not None and answered else "timeout"
            log.warning(
                "the events relay will retry %d events: %r", len(messages) - relayed, reason
            )
            self._tails.clear()
            for future in pending[relayed:]:
                if future is not None and not future.done():
                    future.cancel()
            for msg in messages[relayed:]:
                await msg.nak(delay=_RETRY_PAUSE_S)


async def start_relay(connections: Connections, settings: RegistrySettings) -> Relay | None:
    """Start the relay unless the settings turn it off or the store is not JetStream's (it
    reads ``PARLEY_EVENTS``); ``connections.stack`` stops it."""
    if not settings.relay_ext_events or settings.eventstore != "jetstream":
        log.info("the external events relay is off")
        return None
    relay = Relay(
        connections.nc,
        namespaces=settings.external_namespaces(),
        max_age=settings.ext_events_max_age,
        max_bytes=settings.ext_events_max_bytes,
        batch=settings.ext_events_batch,
        linger=settings.ext_events_linger,
    )
    await relay.start()
    connections.stack.push_async_callback(relay.stop)
    return relay
