"""Cursor pagination: cursors, and pages of lists ordered by a text key.

A cursor is base64url of a JSON array naming the last item shown (and, for sorted agent
lists, the sort), so a page never repeats or skips an item while items are added or removed.
"""

import base64
import binascii
from collections.abc import Callable
from collections.abc import Iterable
from typing import Annotated
from typing import TypeVar

import msgspec
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import Pagination
from parley.edge.http.errors import ApiError

__all__ = [
    "Cursor",
    "Limit",
    "Paging",
    "decode_cursor",
    "encode_cursor",
    "page_by_key",
    "shown_page",
]

T = TypeVar("T")
V = TypeVar("V")

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size.")]
"""The `limit` query parameter of a list."""
Cursor = Annotated[str | None, Parameter(required=False, description="`next_cursor`.")]
"""The `cursor` query parameter of a list."""


def encode_cursor(*parts: str) -> str:
    """The cursor naming ``parts``."""
    return base64.urlsafe_b64encode(msgspec.json.encode(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> tuple[str, ...]:
    """The ``count`` parts a cursor of :func:`encode_cursor` names.

    Raises:
        ApiError: ``INVALID_REQUEST`` for a cursor this API did not issue.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = msgspec.json.decode(raw, type=tuple[str, ...])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        parts = ()
    if len(parts) != count:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "invalid cursor; pass next_cursor from the previous page unchanged",
            [{"field": "query.cursor", "message": "not a cursor this API issued"}],
        )
    return parts


def page_by_key(
    items: Iterable[T], key: Callable[[T], str], *, limit: int, cursor: str | None
) -> Page[T]:
    """Sort ``items`` by ``key`` and take ``limit`` of them after ``cursor``.

    Raises:
        ApiError: ``INVALID_REQUEST`` for a cursor this API did not issue.
    """
    return shown_page(items, key, lambda item: item, limit=limit, cursor=cursor)


def shown_page(
    items: Iterable[T],
    key: Callable[[T], str],
    show: Callable[[T], V],
    *,
    limit: int,
    cursor: str | None,
) -> Page[V]:
    """:func:`page_by_key`, each item on the page shown by ``show`` (only those: a list of
    thousands makes a view of the page's, not of every one).

    Raises:
        ApiError: ``INVALID_REQUEST`` for a cursor this API did not issue.
    """
    keyed = sorted(((key(item), item) for item in items), key=lambda pair: pair[0])
    total = len(keyed)
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        keyed = [pair for pair in keyed if pair[0] > after]
    page = keyed[:limit]
    more = len(keyed) > limit
    next_cursor = encode_cursor(page[-1][0]) if more and page else None
    pagination = Pagination(
        limit=limit, next_cursor=next_cursor, has_more=next_cursor is not None, total_count=total
    )
    return Page(data=[show(item) for _, item in page], pagination=pagination)


class Paging:
    """The `limit` and `cursor` of a list route (the dependency ``paging``)."""

    def __init__(self, limit: Limit = 50, cursor: Cursor = None) -> None:
        self.limit, self.cursor = limit, cursor

    def page(self, items: Iterable[T], key: Callable[[T], str]) -> Page[T]:
        """:func:`page_by_key` with this request's `limit` and `cursor`."""
        return page_by_key(items, key, limit=self.limit, cursor=self.cursor)

    def shown(self, items: Iterable[T], key: Callable[[T], str], show: Callable[[T], V]) -> Page[V]:
        """:func:`shown_page` with this request's `limit` and `cursor`."""
        return shown_page(items, key, show, limit=self.limit, cursor=self.cursor)
