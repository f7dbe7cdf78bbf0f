"""One lock per key, for work on one aggregate that must run one at a time in this process.

Across processes the event store's expected version serialises writers; this lock only stops
a process from conflicting with itself (two proposals of one task arriving together; the
JetStream store's ``ANY_VERSION`` appends to one stream). It lives with the event store, which
uses it, and the services take it from here.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["KeyedLock"]


class KeyedLock:
    """An :class:`asyncio.Lock` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    def __len__(self) -> int:
        """Keys held or waited for right now."""
        return len(self._locks)
