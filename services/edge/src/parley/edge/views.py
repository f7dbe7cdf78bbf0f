"""How the edge shows state: times as fixed-width text, and views converted from states.

A view declares the fields the API shows; :func:`as_view` fills them from a state (an
aggregate's, a reply's) by name, so no mapping copies a field list by hand.
"""

from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar

import msgspec

__all__ = ["as_view", "iso", "iso_or_none"]

V = TypeVar("V")


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (`2025-01-02T03:04:05.000006Z`), so it sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00"


def iso_or_none(moment: datetime | None) -> str | None:
    """:func:`iso`, or None for no time."""
    return iso(moment) if moment is not None else None


def as_view(view_type: type[V], state: msgspec.Struct, **fields: Any) -> V:
    """``state`` as the API shows it: the fields ``view_type`` shares with ``state``, then
    ``fields`` (times as text, renamed or computed fields); ``state``'s others are left out.

    Raises:
        msgspec.ValidationError: a shared field whose value the view cannot take (a time
            not given in ``fields``): a bug, so it fails loudly.
    """
    return msgspec.convert({**msgspec.structs.asdict(state), **fields}, view_type)
