"""An append-only sequence that shares its past, so a frozen state appends in O(1)."""

from typing import Generic
from typing import TypeVar

import msgspec

__all__ = ["Chain", "append", "items"]

T = TypeVar("T")


class Chain(msgspec.Struct, Generic[T], frozen=True):
    """The last item, and the chain before it."""

    last: T
    before: "Chain[T] | None"
    length: int


def append(chain: "Chain[T] | None", item: T) -> Chain[T]:
    """``chain`` with ``item`` at its end (``chain`` itself is unchanged)."""
    return Chain(item, chain, (chain.length if chain is not None else 0) + 1)


def items(chain: "Chain[T] | None") -> tuple[T, ...]:
    """The items, first to last."""
    out: list[T] = []
    while chain is not None:
        out.append(chain.last)
        chain = chain.before
    out.reverse()
    return tuple(out)
