"""The bases of the edge projections: a :class:`~parley.eventstore.follower.Follower` that
folds the streams whose names start with ``prefix``, and one that keeps the live aggregates
of such streams by namespace and key.

A projection follows the store from position 0 at start (a rebuild; the store is the
checkpoint), keeps ``applied_position`` and wakes read-your-writes waiters as positions are
applied. It reads every category so ``applied_position`` reaches the store's last position at
start even when the newest event is not one of its own; other events are skipped after one
string check.
"""

from collections.abc import Iterable
from typing import Generic
from typing import Protocol
from typing import TypeVar

from parley.contracts.envelope import Event
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["FoldingProjection", "LiveProjection"]

V = TypeVar("V")
S = TypeVar("S", bound="_Namespaced")


class _Namespaced(Protocol):
    @property
    def namespace(self) -> str: ...


class FoldingProjection(Follower):
    """Folds the events of streams named ``<prefix>…``; subclasses implement :meth:`_fold`."""

    prefix = ""
    """Stream-name prefix of the events folded, e.g. ``agent-``."""

    def fold(self, event: Event) -> None:
        """Fold ``event`` if its stream is one of this projection's."""
        if event.stream.startswith(self.prefix):
            self._fold(event)

    def _fold(self, event: Event) -> None:
        raise NotImplementedError


class LiveProjection(FoldingProjection, Generic[S, V]):
    """One aggregate per stream, folded with its ``evolve``; the live ones' entries are kept
    by namespace and key. Subclasses implement :meth:`_evolve` and :meth:`_entry`."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._states: dict[str, S] = {}
        self._live: dict[str, dict[str, V]] = {}

    def _get(self, namespace: str, key: str) -> V | None:
        return self._live.get(namespace, {}).get(key)

    def _entries(self, namespace: str) -> Iterable[V]:
        return self._live.get(namespace, {}).values()

    def _evolve(self, state: S | None, event: Event) -> S | None:
        """The aggregate's ``evolve``."""
        raise NotImplementedError

    def _entry(self, state: S) -> tuple[str, V | None]:
        """The key of ``state`` and what to keep of it (None: it is not live)."""
        raise NotImplementedError

    def _fold(self, event: Event) -> None:
        state = self._evolve(self._states.get(event.stream), event)
        if state is None:
            return
        self._states[event.stream] = state
        live = self._live.setdefault(state.namespace, {})
        key, entry = self._entry(state)
        if entry is None:
            live.pop(key, None)
        else:
            live[key] = entry
