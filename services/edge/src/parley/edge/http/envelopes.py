"""The response envelopes: `{"data": …}` and `{"data": [...], "pagination": {...}}`.

Every answer of the API is one of these two generics (Litestar names their OpenAPI schemas
`Data[AgentView]`, `Page[AgentView]`, ...), so no route spells its own envelope.
"""

from typing import Generic
from typing import Protocol
from typing import TypeVar

import msgspec
from litestar import Response

__all__ = ["Data", "Page", "Pagination", "Versioned", "created", "versioned"]

T = TypeVar("T")


class Pagination(msgspec.Struct, kw_only=True):
    """Cursor pagination of a list."""

    limit: int
    """Page size asked for."""
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""
    has_more: bool
    """Whether another page follows."""
    total_count: int
    """Items matching the filters, over all pages."""


class Data(msgspec.Struct, Generic[T], kw_only=True):
    """`{"data": …}`: one resource (or one list that is not paged)."""

    data: T


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """`{"data": [...], "pagination": {...}}`: one page of a list."""

    data: list[T]
    pagination: Pagination


def created(view: T, location: str, status: int = 201, **headers: str) -> Response[Data[T]]:
    """``view`` as made by the request (`201`, or `202` for work queued) at ``location``."""
    return Response(Data(data=view), status_code=status, headers={"Location": location, **headers})


class Versioned(Protocol):
    """A resource with a stream version (its `ETag`)."""

    @property
    def version(self) -> int: ...


VersionedT = TypeVar("VersionedT", bound=Versioned)


def versioned(view: VersionedT, status: int = 200, **headers: str) -> Response[Data[VersionedT]]:
    """``view`` with its version as the `ETag` (an `If-Match` of a later write)."""
    return Response(
        Data(data=view), status_code=status, headers={"ETag": f'"{view.version}"', **headers}
    )
