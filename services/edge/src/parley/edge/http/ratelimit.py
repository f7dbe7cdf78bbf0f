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

Within one process a :class:`~parley.kit.locks.KeyedLock` lets one request per window at a
time talk to NATS (no process races itself), and the last entry seen is cached with its
revision: the usual hit is one round trip, and a caller already over its limit is refused
without any. The bucket keeps entries for ``ttl`` seconds after their last write (at least
two of the longest window), so idle callers cost nothing.
"""

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from parley.contracts.subjects import RATE_BUCKET
from parley.kit.locks import KeyedLock

__all__ = ["Rate", "Verdict", "WindowCounter", "caller_key"]

log = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ATTEMPTS = 16
"""Compare-and-set attempts per request before it is refused as contended."""
_CACHE_MAX = 10_000


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


def caller_key(kind: str, ident: str) -> str:
    """A KV-safe key for one caller (``kind``: ``p`` principal, ``ip`` address)."""
    return hashlib.sha256(f"{kind}\x00{ident}".encode()).hexdigest()[:40]


class WindowCounter:
    """Count requests per window in the :data:`RATE_BUCKET` KV bucket (see module doc)."""

    def __init__(self, js: JetStreamContext, *, ttl: float, bucket: str = RATE_BUCKET) -> None:
        self.js, self.ttl, self.bucket = js, ttl, bucket
        self._kv: KeyValue | None = None
        self._locks = KeyedLock()
        self._seen: dict[str, _Window] = {}

    async def start(self) -> None:
        """Open the bucket, creating it if it does not exist yet."""
        try:
            self._kv = await self.js.create_key_value(
                KeyValueConfig(
                    bucket=self.bucket, history=1, ttl=self.ttl, storage=StorageType.MEMORY
                )
            )
        except APIError:  # made by an edge with another TTL: use it as it is
            self._kv = await self.js.key_value(self.bucket)

    async def hit(self, key: str, rate: Rate) -> Verdict:
        """Count one request of ``key`` against ``rate``; refuse it when over.

        Raises:
            nats.errors.Error: NATS did not answer (the caller decides what that means).
        """
        async with self._locks.hold(key):
            for _ in range(_ATTEMPTS):
                now_ms = int(time.time() * 1000)
                window = self._seen.get(key) or await self._read(key)
                if window is None or window.reset_ms <= now_ms:  # a new window begins
                    wanted = _Window(1, now_ms + int(rate.period * 1000), 0)
                elif window.count >= rate.count:
                    self._remember(key, window)
                    return _verdict(False, rate, window, now_ms)
                else:
                    wanted = _Window(window.count + 1, window.reset_ms, 0)
                try:
                    revision = await self._write(key, wanted, window)
                except KeyWrongLastSequenceError:
                    self._seen.pop(key, None)  # another process counted: read, count again
                    continue
                counted = _Window(wanted.count, wanted.reset_ms, revision)
                self._remember(key, counted)
                return _verdict(True, rate, counted, now_ms)
        log.warning("rate-limit window %s too contended; request refused", key)
        return Verdict(allowed=False, limit=rate.count, remaining=0, reset=1.0)

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


def _verdict(allowed: bool, rate: Rate, window: _Window, now_ms: int) -> Verdict:
    return Verdict(
        allowed=allowed,
        limit=rate.count,
        remaining=max(0, rate.count - window.count),
        reset=max(0.0, (window.reset_ms - now_ms) / 1000),
    )
