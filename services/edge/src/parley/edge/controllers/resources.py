"""The bases of the routes' typed dependencies: :class:`Scope` (one per request: its body,
namespace and writes) and :class:`Resource`, the scope of one kind of resource (personas,
tasks, clusters).

Reads come from the resource's projection, ``404`` in the kind's own error when missing,
answered before any command is sent. Writes are commands to the resource's service, answered
once the resource's views show them (read your writes).
"""

from typing import Any
from typing import Generic
from typing import TypeVar
from typing import cast

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.di import Provide

from parley.contracts.errors import ParleyError
from parley.edge.commands import Reply
from parley.edge.dependencies import Edge
from parley.edge.dependencies import Writes
from parley.edge.http.body import decode_body
from parley.edge.http.request_ids import request_id
from parley.eventstore.follower import Follower

__all__ = ["SCOPE", "Resource", "Scope", "http_request"]

V = TypeVar("V")
B = TypeVar("B", bound=msgspec.Struct)


def http_request(writes: Writes) -> Request[Any, Any, Any]:
    """The request an HTTP route's :class:`Writes` was made for."""
    return cast("Request[Any, Any, Any]", writes.connection)


class Scope:
    """What the handlers of a router share of their request: its body, namespace and writes
    (the projections are ``edge``'s), and for a router under `/{<id_param>}` that id."""

    id_param = ""
    """The path parameter naming the router's resource, if any (its value is :attr:`id`)."""

    def __init__(
        self, request: Request[Any, Any, Any], state: State, ns: NamedDependency[str]
    ) -> None:
        # One dependency (``ns``), not two beside each other: Litestar resolves dependencies
        # of one level concurrently, in an anyio task group per request.
        self.edge = Edge.of(state)
        self.writes, self.ns, self.request = Writes(self.edge, request), ns, request
        self.id: str = self.request.path_params[self.id_param] if self.id_param else ""

    @property
    def request_id(self) -> str:
        """The request's id (``Parley-Request-Id``), carried by its commands."""
        return request_id(self.request.scope)

    async def body(self, body_type: type[B], *, optional: bool = False) -> B:
        """The request's body as ``body_type`` (see :func:`~parley.edge.http.body.decode_body`)."""
        return await decode_body(self.request, body_type, optional=optional)


SCOPE = {"ctx": Provide(Scope, sync_to_thread=False)}
"""The dependencies of a router whose handlers may ask for ``ctx: Scope`` (``scope`` is
Litestar's own name for the ASGI scope)."""


class Resource(Scope, Generic[V, Reply]):
    """Reads and writes of one kind of resource; subclasses say where and what."""

    service: str
    """The service its commands go to."""
    reply: type[Reply]
    """That service's reply type."""
    what: str | None = None
    """The resource a ``TIMEOUT`` tells the client to read again."""

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
