"""`Idempotency-Key`: the id a client's key stands for, and one request at a time per id.
(The `Host` allow-list, ports included, is :class:`parley.edge.http.security.HostPolicy`.)"""

import asyncio
import re
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["idempotent_id", "one_at_a_time"]

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IN_FLIGHT: "weakref.WeakValueDictionary[str, asyncio.Lock]" = weakref.WeakValueDictionary()
"""The lock of each idempotent id a request is using (gone with its last user)."""


def idempotent_id(key: str, namespace: str, space: uuid.UUID) -> str:
    """The id an `Idempotency-Key` stands for in ``namespace``: the same key, the same id.

    Raises:
        ApiError: ``INVALID_REQUEST`` unless the key is 1–255 printable ASCII characters.
    """
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "Idempotency-Key must be 1–255 printable ASCII characters",
            [{"field": "header.Idempotency-Key", "message": "invalid"}],
        )
    return str(uuid.uuid5(space, f"{namespace}\x00{key}"))


@asynccontextmanager
async def one_at_a_time(idempotent: str | None) -> AsyncIterator[None]:
    """Requests with the same idempotent id (none: no wait) one after the other, so a
    concurrent replay waits for the first request's reply and then answers as its replay."""
    if idempotent is None:
        yield
        return
    async with _IN_FLIGHT.setdefault(idempotent, asyncio.Lock()):
        yield
