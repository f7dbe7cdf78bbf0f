"""Reads of the JetStream event stream by direct get, without a consumer.

A stream's events (batched ``next_by_subj`` requests), its last event (the tail an append
checks against) and the event at a sequence (where a de-duplicated append landed).
"""

import asyncio
import contextlib
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from parley.contracts import subjects
from parley.contracts.envelope import Event
from parley.eventstore._codec import decode_event
from parley.eventstore._codec import decode_head
from parley.eventstore.port import AppendResult
from parley.eventstore.port import EventStoreError
from parley.eventstore.port import EventStoreUnavailable

__all__ = ["DRIVER_ERRORS", "DirectGet", "Tail"]

_encode = msgspec.json.encode

DRIVER_ERRORS = (nats.errors.Error, TimeoutError)
"""What the NATS client raises when the server is unreachable or does not answer."""


class Tail(msgspec.Struct, frozen=True):
    """The last event of a stream: its id, version and sequence (global position)."""

    id: str
    version: int
    seq: int


class DirectGet:
    """Direct gets on the JetStream stream ``stream_name``."""

    def __init__(self, nc: Client, stream_name: str, timeout: float) -> None:
        self._nc, self._stream, self._timeout = nc, stream_name, timeout
        self._replies = _ReplyRouter(nc)

    async def events(
        self, stream: str, subject: str, from_version: int, after: Tail | None = None
    ) -> list[Event] | None:
        """The events on ``subject`` (the stream ``stream``) from ``from_version`` on.

        ``after``: an event of the stream whose id, version and sequence are known; the read
        starts there, not at the stream's first. None when that event is not there (the hint
        was wrong: read without it).
        """
        out: list[Event] = []
        seq = after.seq if after is not None else 1
        check = after
        replace = msgspec.structs.replace
        try:
            inbox, replies = await self._replies.open()
            try:
                while True:
                    request = _encode({"seq": seq, "next_by_subj": subject, "batch": 1024})
                    await self._nc.publish(
                        f"$JS.API.DIRECT.GET.{self._stream}", request, reply=inbox
                    )
                    while True:
                        async with asyncio.timeout(self._timeout):
                            msg = await replies.get()
                        headers = msg.headers or {}
                        status = headers.get("Status")
                        if status is not None:
                            break
                        seq = int(headers["Nats-Sequence"])
                        event = decode_event(msg.data)
                        if check is not None:
                            if (event.id, event.version) != (check.id, check.version):
                                return None
                            check = None
                        if event.version >= from_version:
                            out.append(replace(event, position=seq))
                    if status != "204" or headers.get("Nats-Num-Pending", "0") == "0":
                        return None if check is not None else out
                    seq += 1
            finally:
                self._replies.close(inbox)
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(f"could not read {stream!r}: {exc!r}") from exc

    async def last(self, subject: str) -> Tail | None:
        """The last event on ``subject`` (None for a new stream)."""
        found = await self._get(f"$JS.API.DIRECT.GET.{self._stream}.{subject}", b"")
        if found is None:
            return None
        data, headers = found
        head = decode_head(data)
        return Tail(head.id, head.version, int(headers["Nats-Sequence"]))

    async def first_after(self, seq: int, subject: str) -> int | None:
        """The sequence of the first message after ``seq`` on ``subject`` (a filter; None: none)."""
        request = _encode({"seq": seq + 1, "next_by_subj": subject})
        found = await self._get(f"$JS.API.DIRECT.GET.{self._stream}", request)
        return None if found is None else int(found[1]["Nats-Sequence"])

    async def recorded_at(self, seq: int, stream: str) -> AppendResult:
        """Where a de-duplicated append was first stored."""
        found = await self._get(f"$JS.API.DIRECT.GET.{self._stream}", _encode({"seq": seq}))
        if found is None or found[1].get("Nats-Subject") != subjects.events(stream):
            raise EventStoreError(
                f"event id already used at position {seq} outside stream {stream!r}"
            )
        return AppendResult(decode_head(found[0]).version, seq)

    async def _get(self, subject: str, request: bytes) -> tuple[bytes, dict[str, str]] | None:
        """One direct get: the message's data and headers, or None when there is none (404)."""
        try:
            msg = await self._nc.request(subject, request, timeout=self._timeout)
        except DRIVER_ERRORS as exc:
            raise EventStoreUnavailable(f"JetStream did not answer a direct get: {exc!r}") from exc
        headers = msg.headers or {}
        if "Status" in headers:
            if headers["Status"] == "404":
                return None
            raise EventStoreError(f"JetStream direct get failed: {headers}")
        return msg.data, headers

    async def stop(self) -> None:
        """Drop the reply subscription."""
        await self._replies.stop()


class _ReplyRouter:
    """One wildcard inbox subscription for every read's replies, routed by the last token.

    A read used to subscribe and unsubscribe an inbox of its own: two extra protocol writes
    per read, which on these machines cost more than the read itself.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._sub: Any = None
        self._queues: dict[str, asyncio.Queue[Msg]] = {}
        self._next = 0

    async def open(self) -> tuple[str, asyncio.Queue[Msg]]:
        """A fresh reply subject and the queue its messages arrive on."""
        if self._sub is None:
            self._prefix = self._nc.new_inbox()
            self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._route)
        self._next += 1
        token = str(self._next)
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._queues[token] = queue
        return f"{self._prefix}.{token}", queue

    def close(self, inbox: str) -> None:
        """Forget a reply subject (late replies to it are dropped)."""
        self._queues.pop(inbox.rsplit(".", 1)[-1], None)

    async def stop(self) -> None:
        """Drop the subscription."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None

    async def _route(self, msg: Msg) -> None:
        queue = self._queues.get(msg.subject.rsplit(".", 1)[-1])
        if queue is not None:
            queue.put_nowait(msg)
