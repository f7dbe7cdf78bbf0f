"""The app's guards run as one (:func:`in_order`); `Idempotency-Key`: the id a client's key
stands for, and one request at a time per id. (The `Host` allow-list, ports included, is
:class:`parley.edge.http.security.HostPolicy`.)"""

import re
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError
from parley.eventstore.locks import KeyedLock

__all__ = ["in_order", "idempotent_id", "one_at_a_time", "replay_headers"]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def in_order(*guards: Guard) -> Guard:
    """One guard that runs ``guards`` one after the other.

    Litestar gives each guard its own copy of the route handler (``copy(handler)``, per
    request); ours only read it, so one guard, one copy.
    """

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        for each in guards:
            await each(connection, handler)

    return guard


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IN_FLIGHT = KeyedLock()
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


def replay_headers(location: str, replayed: bool) -> dict[str, str]:
    """The headers of a create: its `Location`, and `Idempotent-Replayed: true` when a retry
    with the same `Idempotency-Key` found what the first try made."""
    headers = {"Location": location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers


@asynccontextmanager
async def one_at_a_time(idempotent: str | None) -> AsyncIterator[None]:
    """Requests with the same idempotent id (none: no wait) one after the other, so a
    concurrent replay waits for the first request's reply and then answers as its replay."""
    if idempotent is None:
        yield
        return
    async with _IN_FLIGHT.hold(idempotent):
        yield
