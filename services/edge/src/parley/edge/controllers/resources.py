"""The base of the routes of one kind of resource (personas, tasks, clusters): one per
request, a typed dependency holding the request's namespace and writes.

Reads come from the resource's projection, ``404`` in the kind's own error when missing,
answered before any command is sent. Writes are commands to the resource's service, answered
once the resource's views show them (read your writes).
"""

from typing import Generic, TypeVar

import msgspec
from litestar.di import NamedDependency

from parley.contracts.errors import ParleyError
from parley.edge.commands import Reply
from parley.edge.dependencies import Edge, Writes
from parley.eventstore.follower import Follower

__all__ = ["Resource"]

V = TypeVar("V")


class Resource(Generic[V, Reply]):
    """Reads and writes of one kind of resource; subclasses say where and what."""

    service: str
    """The service its commands go to."""
    reply: type[Reply]
    """That service's reply type."""
    what: str | None = None
    """The resource a ``TIMEOUT`` tells the client to read again."""

    def __init__(self, writes: NamedDependency[Writes], ns: NamedDependency[str]) -> None:
        self.writes, self.ns = writes, ns
        self.edge: Edge = writes.edge

    def views(self) -> tuple[Follower, ...]:
        """The projections that must show a write before it is answered."""
        raise NotImplementedError

    def find(self, key: str, namespace: str) -> V | None:
        """The resource ``key`` of ``namespace``, if any."""
        raise NotImplementedError

    def missing(self, key: str, namespace: str) -> ParleyError:
        """The ``404`` of a resource ``key`` that does not exist."""
        raise NotImplementedError

    def get(self, key: str, namespace: str | None = None) -> V:
        """The resource ``key`` (of the request's namespace by default), or its ``404``."""
        namespace = namespace or self.ns
        view = self.find(key, namespace)
        if view is None:
            raise self.missing(key, namespace)
        return view

    async def run(
        self, verb: str, command: msgspec.Struct, *, within: float | None = None
    ) -> Reply:
        """Send ``command``; answer once :meth:`views` show its effect."""
        return await self.writes.send(
            self.service,
            verb,
            command,
            self.reply,
            views=self.views(),
            within=within,
            what=self.what,
        )
