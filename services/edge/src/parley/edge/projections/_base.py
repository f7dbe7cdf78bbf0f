"""The base of every edge projection: a :class:`~parley.eventstore.follower.Follower` that
folds the streams whose names start with ``prefix``.

A projection follows the store from position 0 at start (a rebuild; the store is the
checkpoint), keeps ``applied_position`` and wakes read-your-writes waiters as positions are
applied. It reads every category so ``applied_position`` reaches the store's last position at
start even when the newest event is not one of its own; other events are skipped after one
string check.
"""

from parley.contracts.envelope import Event
from parley.eventstore.follower import Follower

__all__ = ["FoldingProjection"]


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
