"""The handlers' typed dependencies: namespace, `If-Match`, the projections, send-and-wait.

The app keeps one :class:`Edge` (its connections and projections) in ``app.state.edge``;
:data:`DEPENDENCIES` provides its parts by name to any handler that asks for them
(``agents: AgentsProjection``, ``writes: Writes``, ...), so no handler reads the app state.
"""

import re
from dataclasses import dataclass
from typing import Annotated
from typing import Any
from typing import cast

import msgspec
from litestar import Request
from litestar import WebSocket
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import QueryParameter
from litestar.params import SkipValidation
from nats.aio.client import Client

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.contracts.runtime import SERVICE as RUNTIME
from parley.contracts.runtime import RuntimeReply
from parley.edge.commands import CommandClient
from parley.edge.commands import Reply
from parley.edge.http.errors import ApiError
from parley.edge.http.paging import Paging
from parley.edge.http.params import optional_header
from parley.edge.http.request_ids import request_id
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.edge.projections.messages import MessagesProjection
from parley.edge.projections.personas import PersonasProjection
from parley.edge.projections.positions import SeenPositions
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.tasks import TasksProjection
from parley.edge.settings import EdgeSettings
from parley.edge.streams.hub import Hub
from parley.eventstore.follower import Follower
from parley.eventstore.port import EventStore
from parley.identity.authn import Authenticator
from parley.identity.keyindex import KeyIndex
from parley.identity.principal import Principal
from parley.identity.tickets import TicketStore

__all__ = [
    "DEPENDENCIES",
    "NAMESPACE",
    "SOCKET_WRITES",
    "Edge",
    "Store",
    "Writes",
    "provide_expected_version",
    "provide_namespace",
]

NAMESPACE = re.compile(NAMESPACE_PATTERN)
_VERSION = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')

Store = NamedDependency[SkipValidation[EventStore]]
"""The event store as a dependency (a Protocol: Litestar cannot check it by isinstance)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """What the edge opened at start-up: its connections, command client and projections."""

    settings: EdgeSettings
    nc: Client
    store: EventStore
    commands: CommandClient
    agents: AgentsProjection
    personas: PersonasProjection
    runtime: RuntimeProjection
    clusters: ClustersProjection
    messages: MessagesProjection
    tasks: TasksProjection
    keys: KeyIndex
    """Every API key, followed from the store (revocations apply within milliseconds)."""
    authenticator: Authenticator
    """Credentials → principals (keys, JWTs)."""
    tickets: TicketStore
    """Single-use WebSocket tickets (NATS KV, shared by every edge process)."""
    hub: Hub
    """One live feed of the store for every SSE and WebSocket event subscriber."""
    positions: SeenPositions
    """The newest applied position per category: the ``min_position`` of commands."""

    @classmethod
    def of(cls, state: State) -> "Edge":
        """The app's :class:`Edge` (set by the app's lifespan)."""
        return cast(Edge, state.edge)


class Writes:
    """Read your writes: send a command, then wait until projections show its position."""

    def __init__(self, edge: Edge, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        self.edge, self.connection = edge, connection

    @property
    def actor(self) -> str | None:
        """Id of the principal the commands act for (the ``Parley-Actor`` header)."""
        user = self.connection.scope.get("user")
        return user.id if isinstance(user, Principal) else None

    async def send(
        self,
        service: str,
        verb: str,
        command: msgspec.Struct,
        reply_type: type[Reply],
        *,
        views: tuple[Follower, ...],
        within: float | None = None,
        strict: bool = True,
        what: str | None = None,
    ) -> Reply:
        """Send ``command`` to ``parley.cmd.<service>.<verb>``; wait for ``views`` to apply it.

        Args:
            service: The service, e.g. ``registry``.
            verb: The command's verb, e.g. ``create_agent``.
            command: The command.
            reply_type: The service's reply type.
            views: The projections that must show the reply's position (none: do not wait,
                e.g. for a streamed turn, whose stream is the answer).
            within: Seconds to wait for the reply (default: the command timeout).
            strict: Raise ``TIMEOUT`` when a view lags; otherwise answer anyway (for replies
                that carry the result themselves, such as a finished chat turn).
            what: The resource the ``TIMEOUT`` message tells the client to read again.

        Raises:
            ApiError: the service's error, the command client's, or ``TIMEOUT``.
        """
        reply = await self.edge.commands.request(
            service,
            verb,
            command,
            reply_type,
            request_id=request_id(self.connection.scope),
            traceparent=self.connection.headers.get("traceparent"),
            within=within,
            actor=self.actor,
        )
        await self.wait(reply, views, strict=strict, what=what)
        return reply

    async def runtime(
        self,
        verb: str,
        command: msgspec.Struct,
        *,
        within: float | None = None,
        strict: bool = True,
        wait: bool = True,
    ) -> RuntimeReply:
        """Send a runtime command; wait for the runtime view unless ``wait`` is false (a
        streamed turn: its stream is the answer, and the first token should not wait)."""
        if getattr(command, "request_id", "") is None:  # runtime commands carry the id
            command.request_id = request_id(self.connection.scope)  # type: ignore[attr-defined]
        views = (self.edge.runtime,) if wait else ()
        return await self.send(
            RUNTIME, verb, command, RuntimeReply, views=views, within=within, strict=strict
        )

    async def wait(
        self,
        reply: Reply,
        views: tuple[Follower, ...],
        *,
        strict: bool = True,
        what: str | None = None,
    ) -> None:
        """Wait until ``views`` have applied ``reply.position`` (see :meth:`send`)."""
        timeout = self.edge.settings.read_your_writes_timeout
        for view in views:
            if not await view.wait_for(reply.position, timeout) and strict:
                raise _not_visible(reply, what)


def _not_visible(reply: Reply, what: str | None) -> ApiError:
    version = getattr(reply, "version", 0)
    if what is None:
        message = "the change was recorded but is not visible yet; read the resource again shortly"
        details: dict[str, Any] = {"position": reply.position, "version": version}
    else:
        message = (
            f"the change was recorded (version {version}) but is not visible yet; read the"
            f" {what} again shortly"
        )
        details = {"agent_id": getattr(reply, "agent_id", None)} if what == "agent" else {}
        details.update(version=version, position=reply.position)
    return ApiError(ErrorCode.TIMEOUT, message, details)


async def provide_namespace(
    x_parley_namespace: Annotated[
        str | None, optional_header("X-Parley-Namespace", "Tenant; default `default`.")
    ] = None,
    namespace_query: Annotated[
        str | None,
        QueryParameter(
            name="namespace", required=False, description="Tenant, if the header is absent."
        ),
    ] = None,
) -> str:
    """The request's namespace: header, then query, then `default`."""
    namespace = x_parley_namespace or namespace_query or "default"
    if not NAMESPACE.match(namespace):
        message = "lowercase letters, digits and `-`, 1–63 characters"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid namespace {namespace[:80]!r}: {message}",
            [{"field": "header.X-Parley-Namespace", "message": message}],
        )
    return namespace


async def provide_expected_version(
    if_match: Annotated[
        str | None, optional_header("If-Match", 'Expected version: `"<version>"`.')
    ] = None,
) -> int | None:
    """The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `*` or none means any."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _VERSION.match(if_match.strip())
    if not match:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            'If-Match must be the ETag of the agent, e.g. "3"',
            [{"field": "header.If-Match", "message": "expected a quoted version number"}],
        )
    return int(match.group(1))


def _settings(state: State) -> EdgeSettings:
    return cast(EdgeSettings, state.settings)


def _part(name: str) -> Provide:
    """Provide the :class:`Edge` attribute ``name`` (its type is the handler's annotation)."""

    def provide(state: State) -> object:
        return getattr(Edge.of(state), name)

    return Provide(provide, sync_to_thread=False)


def _writes(request: Request[Any, Any, Any], state: State) -> Writes:
    return Writes(Edge.of(state), request)


def _socket_writes(socket: WebSocket[Any, Any, Any], state: State) -> Writes:
    return Writes(Edge.of(state), socket)


SOCKET_WRITES = {"writes": Provide(_socket_writes, sync_to_thread=False)}
"""The dependencies of a WebSocket handler that sends commands: ``writes: Writes``."""


DEPENDENCIES: dict[str, Provide] = {
    "ns": Provide(provide_namespace),
    "expected_version": Provide(provide_expected_version),
    "settings": Provide(_settings, sync_to_thread=False),
    "writes": Provide(_writes, sync_to_thread=False),
    "paging": Provide(Paging, sync_to_thread=False),
    **{
        name: _part(name)
        for name in (
            "nc",
            "store",
            "hub",
            "agents",
            "personas",
            "runtime",
            "clusters",
            "messages",
            "tasks",
            "keys",
            "tickets",
        )
    },
}
"""Every dependency a handler may ask for, by parameter name."""
