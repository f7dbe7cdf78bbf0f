"""Cursor pagination of small catalogue lists (models, personas), ordered by a text key.

A cursor is base64url of the last shown item's key, so a page never repeats or skips an item
while items are added or removed. Agent lists, with their sorts, use :mod:`parley.edge.listing`.
"""

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TypeVar

import msgspec

from parley.contracts.errors import ErrorCode
from parley.edge.errors import ApiError
from parley.edge.schemas import Pagination

__all__ = ["page_by_key"]

T = TypeVar("T")


def page_by_key(
    items: Iterable[T], key: Callable[[T], str], *, limit: int, cursor: str | None
) -> tuple[list[T], Pagination]:
    """Sort ``items`` by ``key`` and take ``limit`` of them after ``cursor``.

    Raises:
        ApiError: ``INVALID_REQUEST`` for a cursor this API did not issue.
    """
    keyed = sorted(((key(item), item) for item in items), key=lambda pair: pair[0])
    total = len(keyed)
    if cursor:
        after = _decode(cursor)
        keyed = [pair for pair in keyed if pair[0] > after]
    page = keyed[:limit]
    more = len(keyed) > limit
    next_cursor = _encode(page[-1][0]) if more and page else None
    pagination = Pagination(
        limit=limit, next_cursor=next_cursor, has_more=next_cursor is not None, total_count=total
    )
    return [item for _, item in page], pagination


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([key])).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (key,) = msgspec.json.decode(raw, type=tuple[str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "invalid cursor; pass next_cursor from the previous page unchanged",
            [{"field": "query.cursor", "message": "not a cursor this API issued"}],
        ) from None
    return key
