"""Where the edge's views stand, per stream category: what a command's ``min_position`` is.

A service whose view reads some categories (``VIEWED`` in each service's contract) waits,
before a command, until it has applied every event of those categories the caller saw. The
edge tells it the position of the newest such event it has applied, not its own last
position: a service is then not sent looking for events it never reads (a ``next_position``
lookup in the store) whenever the newest event belongs to another category.
"""

from collections.abc import Iterable

from parley.contracts import acl
from parley.contracts import runtime
from parley.contracts import tasks
from parley.contracts.envelope import Event
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["SeenPositions"]


class SeenPositions(Follower):
    """The position of the newest applied event of each category."""

    name = "edge-positions"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._newest: dict[str, int] = {}

    def fold(self, event: Event) -> None:
        """Note the event's position under its stream's category."""
        self._newest[event.stream.partition("-")[0]] = event.position

    def of(self, categories: Iterable[str]) -> int:
        """The newest position among ``categories`` (0: none seen)."""
        newest = self._newest
        return max((newest.get(category, 0) for category in categories), default=0)

    @property
    def runtime(self) -> int:
        """The ``min_position`` of a runtime command."""
        return self.of(runtime.VIEWED)

    @property
    def messaging(self) -> int:
        """The ``min_position`` of a messaging command."""
        return self.of(acl.VIEWED)

    @property
    def tasks(self) -> int:
        """The ``min_position`` of a tasks command."""
        return self.of(tasks.VIEWED)
