"""Filtering, sorting and cursor pagination of agent lists.

A cursor is base64url of ``[sort, key, id]``: it names the sort it belongs to and the last
item shown, so a page never repeats or skips an item while agents are added or removed.
"""

from collections.abc import Callable
from collections.abc import Iterable
from typing import Literal

import msgspec

from parley.contracts.errors import ErrorCode
from parley.contracts.registry import AgentState
from parley.contracts.registry import AgentView
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import invalid
from parley.edge.http.paging import decode_cursor
from parley.edge.http.paging import encode_cursor

__all__ = ["SORT_FIELDS", "AgentFilter", "AgentPage", "paginate", "parse_labels", "parse_sort"]

SORT_FIELDS: dict[str, Callable[[AgentView], str]] = {
    "name": lambda v: v.spec.name,
    "created_at": lambda v: v.created_at,
    "updated_at": lambda v: v.updated_at,
    "state": lambda v: v.state.value,
}


class AgentFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Conditions every listed agent meets (all must hold; repeated values of one are ORed,
    except labels, which must all match)."""

    states: frozenset[AgentState] = frozenset()
    capabilities: frozenset[str] = frozenset()
    labels: tuple[tuple[str, str], ...] = ()
    trigger: str | None = None
    name: str | None = None

    def __call__(self, view: AgentView) -> bool:
        if self.states and view.state not in self.states:
            return False
        if self.capabilities and not self.capabilities.intersection(view.spec.capabilities):
            return False
        if any(view.spec.labels.get(k) != v for k, v in self.labels):
            return False
        if self.trigger is not None and view.spec.trigger.type != self.trigger:
            return False
        return self.name is None or view.spec.name == self.name


class AgentPage(msgspec.Struct, kw_only=True):
    """One page of a sorted, filtered list."""

    items: list[AgentView]
    next_cursor: str | None
    total_count: int


def parse_sort(sort: str) -> tuple[str, Literal["asc", "desc"]]:
    """``field:asc|desc`` (direction optional, default asc; any case) → (field, direction)."""
    field, _, direction = sort.strip().lower().partition(":")
    direction = direction or "asc"
    if field not in SORT_FIELDS or direction not in ("asc", "desc"):
        raise invalid(
            "query.sort",
            f"expected <field>:asc|desc with field one of {', '.join(SORT_FIELDS)}, got {sort!r}",
        )
    return field, direction  # type: ignore[return-value]


def parse_labels(labels: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``key=value`` strings → pairs."""
    pairs = []
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise invalid("query.label", f"expected key=value, got {label!r}")
        pairs.append((key, value))
    return tuple(pairs)


def _decode_cursor(cursor: str, sort: str) -> tuple[str, str]:
    got_sort, key, agent_id = decode_cursor(cursor, 3)
    if got_sort != sort:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            f"the cursor belongs to sort={got_sort}, not sort={sort}; keep the sort while paging",
            [{"field": "query.cursor", "message": "sort changed"}],
        )
    return key, agent_id


def paginate(views: Iterable[AgentView], *, sort: str, limit: int, cursor: str | None) -> AgentPage:
    """Sort ``views`` by ``sort`` (then id), and take ``limit`` items after ``cursor``."""
    field, direction = parse_sort(sort)
    canonical = f"{field}:{direction}"
    key_of = SORT_FIELDS[field]
    keyed = sorted(
        ((key_of(v), v.id, v) for v in views),
        key=lambda t: (t[0], t[1]),
        reverse=direction == "desc",
    )
    total = len(keyed)
    if cursor:
        after = _decode_cursor(cursor, canonical)
        if direction == "asc":
            keyed = [t for t in keyed if (t[0], t[1]) > after]
        else:
            keyed = [t for t in keyed if (t[0], t[1]) < after]
    page = keyed[:limit]
    more = len(keyed) > limit
    next_cursor = encode_cursor(canonical, page[-1][0], page[-1][1]) if more and page else None
    return AgentPage(items=[t[2] for t in page], next_cursor=next_cursor, total_count=total)
