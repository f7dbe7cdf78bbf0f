"""Rate-limit windows shared by every edge process, in a NATS KV bucket.

A window is one KV entry per (class, caller): ``"<count> <reset epoch ms>"``. It begins at
the caller's first request (so a burst always meets the whole window) and ends ``period``
seconds later; the next request after that starts a new one. Every request is counted with
an atomic compare-and-set on the entry's revision (``kv.create`` for a new window,
``kv.update(last=revision)`` for the next count), so two edge processes can never both take
the last slot: the one that loses the race re-reads the entry and counts again, or is refused.

Why NATS KV and not Litestar's ``RateLimitMiddleware`` on a shared store: that middleware
reads the count, then writes it back (get, then set), which is not atomic; two processes (or
two requests of one) read the same count and both pass. NATS is already every process's
shared state, and its per-subject expected-sequence check is the compare-and-set we need.

Within one process the requests of one window never race each other for the entry: they
queue, and one task per window counts them in batches. While one compare-and-set is in
flight every later request joins the next batch, which is counted with a single
compare-and-set that adds as many as the window still allows; the batch's requests pass in
arrival order, each told its own position (``Remaining`` is the limit minus it), and the rest
are refused. So many concurrent requests of one caller cost about one round trip per batch,
not one each, and the count stays exact across processes. The last entry seen is cached
with its revision: the usual batch is one round trip, and a caller already over its limit is
refused without any.

A process may also count a few slots ahead (a lease): while more than half of a window of a
limit of at least :data:`AHEAD_MIN_LIMIT` is left, a batch claims up to a sixteenth of what is
left beyond its own requests (at most :data:`AHEAD_MAX`), and the next requests of that caller
take those slots without a round trip; when half the lease is used the next one is claimed in
the background. So a steady caller does not wait for NATS on every request. No more than the
limit ever pass; slots a process claimed and did not use before the window ended are lost
with it, so other processes may refuse that many requests early (at most a sixteenth of the
limit each, and only when that process's caller stopped mid-window). Below
:data:`AHEAD_MIN_LIMIT` nothing is claimed ahead: small limits are counted one batch at a
time. The bucket keeps entries for ``ttl`` seconds after their last write (at
least two of the longest window), so idle callers cost nothing.
"""

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.api import StorageType
from nats.js.errors import APIError
from nats.js.errors import KeyDeletedError
from nats.js.errors import KeyNotFoundError
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from parley.contracts.subjects import RATE_BUCKET

__all__ = ["AHEAD_MAX", "AHEAD_MIN_LIMIT", "Rate", "Verdict", "WindowCounter", "caller_key"]

log = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ATTEMPTS = 16
"""Compare-and-set attempts per batch before it is refused as contended."""
_CACHE_MAX = 10_000
AHEAD_MIN_LIMIT = 100
"""The smallest limit a process counts slots ahead for (see the module doc)."""
AHEAD_MAX = 256
"""The most slots one batch claims ahead of its requests."""
_AHEAD_SHARE = 16


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period`` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> "Rate | None":
        """``"100/1s"``, ``"20/s"``, ``"600/1m"``, ``"5000/1h"``; ``off``/empty is ``None``.

        Raises:
            ValueError: for anything else.
        """
        if text.strip().lower() in ("", "off", "none", "0"):
            return None
        match = _RATE.match(text.lower())
        if not match:
            raise ValueError(f"invalid rate {text!r}: use <count>/<n><ms|s|m|h>, e.g. 100/1s")
        count, amount, unit = int(match[1]), float(match[2] or 1), _UNITS[match[3] or "s"]
        if count < 1 or amount <= 0:
            raise ValueError(f"invalid rate {text!r}: count and period must be positive")
        return cls(count, amount * unit)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One request counted: whether it may pass, and the headers that say so."""

    allowed: bool
    limit: int
    remaining: int
    reset: float
    """Seconds until the window ends."""

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` (``Reset`` in whole seconds from now), and ``Retry-After``."""
        reset = str(max(1, math.ceil(self.reset)))
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset,
        }
        if not self.allowed:
            headers["Retry-After"] = reset
        return headers


@dataclass(frozen=True, slots=True)
class _Window:
    count: int
    reset_ms: int
    revision: int

    def encode(self) -> bytes:
        return f"{self.count} {self.reset_ms}".encode()

    @classmethod
    def decode(cls, raw: bytes | None, revision: int) -> "_Window | None":
        try:
            count, reset = (raw or b"").split()
            return cls(int(count), int(reset), revision)
        except ValueError:
            return None  # not ours, or damaged: treat as no window


@dataclass(slots=True)
class _Lease:
    """Slots of one window this process claimed ahead and has not handed out yet."""

    rate: Rate
    reset_ms: int
    slots: collections.deque[range]
    """Unused claimed positions (0-based within the window), in claim order."""
    claimed: int = 0
    """How many the last claim ahead took (its half left asks for the next one)."""

    def take(self, now_ms: int) -> int | None:
        """The next claimed position, or None (none left, or its window ended)."""
        if self.reset_ms <= now_ms:
            self.slots.clear()
            return None
        while self.slots:
            first = self.slots[0]
            if first:
                self.slots[0] = first[1:]
                return first[0]
            self.slots.popleft()
        return None

    def left(self) -> int:
        return sum(len(r) for r in self.slots)


def caller_key(kind: str, ident: str) -> str:
    """A KV-safe key for one caller (``kind``: ``p`` principal, ``ip`` address)."""
    return hashlib.sha256(f"{kind}\x00{ident}".encode()).hexdigest()[:40]


class WindowCounter:
    """Count requests per window in the :data:`RATE_BUCKET` KV bucket (see module doc)."""

    def __init__(
        self, js: JetStreamContext, *, ttl: float, bucket: str = RATE_BUCKET, replicas: int = 1
    ) -> None:
        self.js, self.ttl, self.bucket, self.replicas = js, ttl, bucket, replicas
        self._kv: KeyValue | None = None
        self._seen: dict[str, _Window] = {}
        self._waiting: dict[str, list[tuple[Rate, asyncio.Future[Verdict]]]] = {}
        """Requests waiting for their window's next batch, in arrival order."""
        self._draining: dict[str, asyncio.Task[None]] = {}
        """The task counting each window's batches (also keeps it referenced)."""
        self._leases: dict[str, _Lease] = {}
        self._refill: set[str] = set()
        """Keys whose lease is half used: their drain claims the next one."""

    async def start(self) -> None:
        """Open the bucket, creating it if it does not exist yet."""
        try:
            self._kv = await self.js.create_key_value(
                KeyValueConfig(
                    bucket=self.bucket,
                    history=1,
                    ttl=self.ttl,
                    storage=StorageType.MEMORY,
                    replicas=self.replicas,
                )
            )
        except APIError:  # made by an edge with another TTL: use it as it is
            self._kv = await self.js.key_value(self.bucket)

    async def hit(self, key: str, rate: Rate) -> Verdict:
        """Count one request of ``key`` against ``rate``; refuse it when over.

        Raises:
            nats.errors.Error: NATS did not answer (the caller decides what that means).
        """
        now_ms = int(time.time() * 1000)
        lease = self._leases.get(key)
        if lease is not None and lease.rate == rate:
            slot = lease.take(now_ms)
            if slot is not None:
                if self._wants_refill(key):
                    self._refill.add(key)
                    self._start_drain(key, rate)
                reset = max(0.0, (lease.reset_ms - now_ms) / 1000)
                return Verdict(True, rate.count, max(0, rate.count - slot - 1), reset)
        seen = self._seen.get(key)
        if seen is not None and seen.reset_ms > now_ms and seen.count >= rate.count:
            return _verdict(False, rate, seen, now_ms)  # counts only grow within a window
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((rate, future))
        self._start_drain(key, rate)
        return await future

    def _start_drain(self, key: str, rate: Rate) -> None:
        if key not in self._draining:
            self._draining[key] = asyncio.create_task(self._drain(key, rate))

    async def _drain(self, key: str, refill_rate: Rate) -> None:
        """Count ``key``'s waiting requests, a batch per compare-and-set, until none wait
        (and claim its next lease when asked to)."""
        try:
            while True:
                waiting = self._waiting.pop(key, None)
                if not waiting:
                    if key not in self._refill:
                        break
                    self._refill.discard(key)
                    if self._wants_refill(key):
                        with contextlib.suppress(Exception):  # a request will count again
                            await self._count(key, refill_rate, 0)
                    continue
                rate = waiting[0][0]
                batch = [future for r, future in waiting if r == rate and not future.done()]
                rest = [(r, future) for r, future in waiting if r != rate]
                if rest:  # another rate on this key (a changed setting): its own batch
                    self._waiting[key] = rest
                if not batch:
                    continue
                self._refill.discard(key)  # this batch claims ahead, if it may
                try:
                    verdicts = await self._count(key, rate, len(batch))
                except Exception as exc:  # NATS failed: each request of the batch raises it
                    for future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for future, verdict in zip(batch, verdicts, strict=True):
                    if not future.done():
                        future.set_result(verdict)
        finally:
            del self._draining[key]
            for _, future in self._waiting.pop(key, []):  # only when this task was cancelled
                future.cancel()

    async def _count(self, key: str, rate: Rate, asked: int) -> list[Verdict]:
        """Count ``asked`` requests of ``key`` at once: the first ones that fit pass. Slots
        claimed ahead go to the key's lease."""
        for _ in range(_ATTEMPTS):
            now_ms = int(time.time() * 1000)
            window = self._seen.get(key) or await self._read(key)
            if window is not None and window.reset_ms > now_ms:
                before, reset_ms = window.count, window.reset_ms
                if before >= rate.count:
                    self._remember(key, window)
                    return [_verdict(False, rate, window, now_ms)] * asked
            elif not asked:  # only a request begins a window
                return []
            else:  # a new window begins
                before, reset_ms = 0, now_ms + int(rate.period * 1000)
            ahead = _ahead(rate, rate.count - before - asked)
            granted = min(asked + ahead, rate.count - before)
            if granted == 0 and asked == 0:
                return []
            wanted = _Window(before + granted, reset_ms, 0)
            try:
                revision = await self._write(key, wanted, window)
            except KeyWrongLastSequenceError:
                self._seen.pop(key, None)  # another process counted: read, count again
                continue
            self._remember(key, _Window(wanted.count, reset_ms, revision))
            served = min(asked, granted)
            if granted > served:
                self._lease(key, rate, reset_ms, range(before + served, before + granted))
            granted = served
            reset = max(0.0, (reset_ms - now_ms) / 1000)
            return [
                Verdict(
                    allowed=i < granted,
                    limit=rate.count,
                    remaining=max(0, rate.count - before - i - 1) if i < granted else 0,
                    reset=reset,
                )
                for i in range(asked)
            ]
        log.warning("rate-limit window %s too contended; requests refused", key)
        return [Verdict(allowed=False, limit=rate.count, remaining=0, reset=1.0)] * asked

    def _wants_refill(self, key: str) -> bool:
        lease = self._leases.get(key)
        return lease is not None and lease.left() * 2 <= lease.claimed

    def _lease(self, key: str, rate: Rate, reset_ms: int, slots: range) -> None:
        lease = self._leases.get(key)
        if lease is None or lease.rate != rate or lease.reset_ms != reset_ms:
            if len(self._leases) >= _CACHE_MAX:
                self._leases.clear()
            lease = self._leases[key] = _Lease(rate, reset_ms, collections.deque())
        lease.slots.append(slots)
        lease.claimed = len(slots)

    async def _read(self, key: str) -> _Window | None:
        try:
            entry = await self._bucket().get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        revision = entry.revision or 0
        return _Window.decode(entry.value, revision) or _Window(0, 0, revision)

    async def _write(self, key: str, wanted: _Window, seen: _Window | None) -> int:
        if seen is None:
            return await self._bucket().create(key, wanted.encode())
        return await self._bucket().update(key, wanted.encode(), last=seen.revision)

    def _remember(self, key: str, window: _Window) -> None:
        if len(self._seen) >= _CACHE_MAX:
            now_ms = int(time.time() * 1000)
            self._seen = {k: w for k, w in self._seen.items() if w.reset_ms > now_ms}
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
        self._seen[key] = window

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the rate-limit counter is not started")
        return self._kv


def _ahead(rate: Rate, left: int) -> int:
    """Slots to claim ahead when ``left`` would be left after the batch's own."""
    if rate.count < AHEAD_MIN_LIMIT or left * 2 <= rate.count:
        return 0
    return min(left // _AHEAD_SHARE, AHEAD_MAX)


def _verdict(allowed: bool, rate: Rate, window: _Window, now_ms: int) -> Verdict:
    return Verdict(
        allowed=allowed,
        limit=rate.count,
        remaining=max(0, rate.count - window.count),
        reset=max(0.0, (window.reset_ms - now_ms) / 1000),
    )
