"""Builders shared by the unit tests: events as the store records them, and folding them."""

from collections.abc import Callable
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Protocol
from typing import TypeVar

import msgspec
import pytest

from parley.contracts.envelope import Event
from parley.contracts.errors import ParleyError

__all__ = [
    "NOW",
    "NS",
    "fold_decided",
    "folded_by_registry",
    "recorded_by_registry",
    "refusal",
    "stored",
]

S = TypeVar("S")


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
"""The time the aggregate tests decide and record at."""
NS = "team-a"
"""The namespace the aggregate tests act in."""


def stored(
    event_type: str,
    payload: msgspec.Struct | dict[str, Any],
    *,
    stream: str,
    version: int,
    source: str,
    time: datetime,
    subject: str | None = None,
    id: str | None = None,
    namespace: str = "default",
    position: int = 0,
) -> Event:
    """``payload`` recorded at ``version`` of ``stream``, as the store hands it back.

    ``subject`` defaults to the stream's id (what follows the category), ``id`` to
    ``e<version>``; a Struct payload is stored as its builtins, a dict as it is.
    """
    return Event(
        id=f"e{version}" if id is None else id,
        source=source,
        type=event_type,
        subject=stream.partition("-")[2] if subject is None else subject,
        time=time,
        data=payload if isinstance(payload, dict) else msgspec.to_builtins(payload),
        stream=stream,
        version=version,
        position=position,
        namespace=namespace,
    )


def recorded_by_registry(
    event_type: str, data: dict[str, Any], *, stream: str, subject: str, version: int = 1
) -> Event:
    """``data`` as the registry records it at ``version`` of ``stream``, in :data:`NS` at
    :data:`NOW` (its id ``e``)."""
    return stored(
        event_type,
        data,
        id="e",
        source="/parley/registry",
        subject=subject,
        time=NOW,
        stream=stream,
        version=version,
        namespace=NS,
    )


def fold_decided(
    evolve: Callable[[S | None, Event], S],
    state: S | None,
    decided: Iterable[tuple[str, msgspec.Struct]],
    *,
    version: int,
    positions: int | None = None,
    **where: Any,
) -> S | None:
    """Fold ``decided`` onto ``state`` (at ``version``), each recorded by :func:`stored`.

    With ``positions``, an event's global position is its version plus ``positions``
    (else 0, not yet recorded).
    """
    for event_type, payload in decided:
        version += 1
        position = 0 if positions is None else version + positions
        state = evolve(
            state, stored(event_type, payload, version=version, position=position, **where)
        )
    return state


def folded_by_registry(
    evolve: Callable[[V | None, Event], V | None],
    state: V | None,
    decided: Iterable[tuple[str, msgspec.Struct]],
    *,
    stream: str,
    subject: str,
    time: datetime = NOW,
) -> V | None:
    """Fold ``decided`` onto ``state`` as the registry records it: after ``state``'s version,
    in :data:`NS`, at ``time``."""
    return fold_decided(
        evolve,
        state,
        decided,
        version=state.version if state is not None else 0,
        source="/parley/registry",
        subject=subject,
        time=time,
        stream=stream,
        namespace=NS,
    )


def refusal(decide: Callable[..., object], *arguments: object) -> ParleyError:
    """The :class:`ParleyError` that ``decide(*arguments)`` raises (the test fails if none)."""
    with pytest.raises(ParleyError) as info:
        decide(*arguments)
    return info.value
