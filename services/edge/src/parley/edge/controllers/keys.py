"""`/api/v1/keys`: API keys (admins only), and `/api/v1/ws-tickets`: WebSocket tickets.

A key is created, rotated and revoked by the registry's commands; its secret is in the ``201``
answer to the create (or the rotate) and nowhere else, ever. Lists and reads come from the
edge's :class:`~parley.identity.keyindex.KeyIndex`, shown without digest. An admin may create,
rotate or revoke only keys whose namespaces it holds itself
(:meth:`~parley.identity.principal.Principal.can_grant`); a key of a namespace it does not
see is ``404``.
"""

from datetime import datetime
from typing import Annotated
from typing import Any

import msgspec
from litestar import Request
from litestar import Router
from litestar import delete
from litestar import get
from litestar import post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from msgspec import Meta

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.identity import ApiKeyReply
from parley.contracts.identity import ApiKeyView
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import KeyName
from parley.contracts.identity import NamespaceGrant
from parley.contracts.identity import RecordApiKeyUse
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import Role
from parley.contracts.identity import RotateApiKey
from parley.contracts.ids import new_id
from parley.contracts.registry import SERVICE as REGISTRY
from parley.edge.commands import CommandClient
from parley.edge.dependencies import Edge
from parley.edge.dependencies import Writes
from parley.edge.http.auth import ACTION
from parley.edge.http.auth import EVERY_NAMESPACE
from parley.edge.http.auth import principal
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import error_responses
from parley.edge.http.paging import Paging
from parley.identity.keyindex import KeyIndex
from parley.identity.keyindex import view
from parley.identity.principal import Action
from parley.identity.principal import Principal
from parley.identity.tickets import TICKET_TTL
from parley.identity.tickets import TicketStore

__all__ = ["identity_routes", "record_key_use"]

Timestamp = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]
"""An RFC 3339 time (the document says so; msgspec's schema of a datetime does not)."""
_KEYS = {ACTION: Action.MANAGE_KEYS, EVERY_NAMESPACE: True}
"""A key route acts on the key's own namespace (checked by the handler), whatever the
request's; only the create makes a key in the request's namespace."""


class NewKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a new key may do (`POST /api/v1/keys`); it belongs to the request's namespace."""

    name: KeyName
    """What or who the key is for."""
    roles: Annotated[list[Role], Meta(min_length=1, max_length=3)]
    """`admin`, `operator`, `viewer`."""
    namespaces: Annotated[list[NamespaceGrant], Meta(max_length=256)] = []
    """Namespaces it may act in (`*`: all; only an admin holding `*` may grant it); empty:
    the request's namespace."""
    expires_at: Timestamp | None = None
    """When it stops working (timezone-aware); null: never."""


class KeyChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A rotation (`expires_at`: a new expiry) or a revocation (`reason`)."""

    expires_at: Timestamp | None = None
    reason: Annotated[str, Meta(max_length=1024)] | None = None


class IssuedKey(msgspec.Struct, kw_only=True):
    """A key and its secret: shown this once, stored nowhere. Keep it safe."""

    key: ApiKeyView
    secret: str


class Ticket(msgspec.Struct, kw_only=True):
    """A single-use WebSocket ticket: open `/ws?ticket=<ticket>` within `expires_in` seconds."""

    ticket: str
    expires_in: int


class KeyOps:
    """The key routes' reads and writes, as the calling admin (one per request)."""

    def __init__(self, request: Request[Any, Any, Any], state: State) -> None:
        edge = Edge.of(state)
        self.request, self.writes, self.keys = request, Writes(edge, request), edge.keys
        self.who: Principal = principal(self.request)

    def get(self, key_id: str) -> Any:
        """The key ``key_id``, or ``404`` when the caller does not see its namespace."""
        key = self.keys.get(key_id)
        if key is None or not self.who.sees(key.namespace):
            raise ParleyError(
                ErrorCode.NOT_FOUND, f"no API key {key_id[:64]}", {"key_id": key_id[:64]}
            )
        return key

    def may_grant(self, namespaces: list[str]) -> None:
        """Refuse (``403``) unless the caller holds every one of ``namespaces``."""
        if not self.who.can_grant(namespaces):
            raise ParleyError(
                ErrorCode.FORBIDDEN,
                "an admin may manage only keys of namespaces it holds itself",
                {"namespaces": namespaces},
            )

    async def run(self, verb: str, command: msgspec.Struct) -> ApiKeyReply:
        """Send a key command; answer once this edge's key index shows it."""
        return await self.writes.send(REGISTRY, verb, command, ApiKeyReply, views=(self.keys,))

    async def issued(self, verb: str, command: CreateApiKey | RotateApiKey) -> Data[IssuedKey]:
        """Make or rotate a key; its view and its secret, shown this once."""
        reply = await self.run(verb, command)
        key = self.keys.get(reply.key_id or "")
        if key is None or reply.secret is None:
            raise ParleyError(ErrorCode.INTERNAL_ERROR, "the key was made but cannot be shown")
        return Data(data=IssuedKey(key=view(key), secret=reply.secret))

    async def revoke(self, key_id: str, reason: str | None) -> Data[ApiKeyView]:
        """Revoke a key of a namespace the caller holds."""
        key = self.get(key_id)
        self.may_grant(key.namespaces)
        command = RevokeApiKey(
            namespace=key.namespace, key_id=key_id, reason=reason, actor=self.who.id
        )
        await self.run("revoke_api_key", command)
        return Data(data=view(self.get(key_id)))


@post(
    "/",
    status_code=201,
    opt={ACTION: Action.MANAGE_KEYS, "body": NewKey},
    responses=error_responses(403, 422),
)
async def create_key(ops: NamedDependency[KeyOps], ns: NamedDependency[str]) -> Data[IssuedKey]:
    """Create an API key; the answer holds its secret, shown this once."""
    body = await decode_body(ops.request, NewKey)
    ops.may_grant(body.namespaces or [ns])
    command = CreateApiKey(
        namespace=ns,
        actor=ops.who.id,
        **msgspec.structs.asdict(body),  # name, roles, namespaces, expires_at: the command's own
    )
    return await ops.issued("create_api_key", command)


@get("/", opt=_KEYS)
async def list_keys(
    ops: NamedDependency[KeyOps], paging: NamedDependency[Paging]
) -> Page[ApiKeyView]:
    """A page of the keys of the namespaces the caller sees, oldest first (never a secret or
    digest)."""
    found = [view(key) for key in ops.keys.keys(ops.who)]
    return paging.page(found, lambda v: f"{v.created_at.isoformat()}\x00{v.key_id}")


@get("/{key_id:str}", opt=_KEYS, responses=error_responses(404))
async def get_key(ops: NamedDependency[KeyOps], key_id: FromPath[str]) -> Data[ApiKeyView]:
    """One key."""
    return Data(data=view(ops.get(key_id)))


@post(
    "/{key_id:str}/rotate",
    opt={**_KEYS, "body": KeyChange, "body_optional": True},
    responses=error_responses(404),
)
async def rotate_key(ops: NamedDependency[KeyOps], key_id: FromPath[str]) -> Data[IssuedKey]:
    """Give a key a new secret (shown this once); the old secret stops working at once."""
    body = await decode_body(ops.request, KeyChange, optional=True)
    key = ops.get(key_id)
    ops.may_grant(key.namespaces)
    command = RotateApiKey(
        namespace=key.namespace, key_id=key_id, expires_at=body.expires_at, actor=ops.who.id
    )
    return await ops.issued("rotate_api_key", command)


@post(
    "/{key_id:str}/revoke",
    status_code=200,
    opt={**_KEYS, "body": KeyChange, "body_optional": True},
    responses=error_responses(404),
)
async def revoke_key(ops: NamedDependency[KeyOps], key_id: FromPath[str]) -> Data[ApiKeyView]:
    """Revoke a key for good: every edge refuses it within a second."""
    body = await decode_body(ops.request, KeyChange, optional=True)
    return await ops.revoke(key_id, body.reason)


@delete("/{key_id:str}", status_code=200, opt=_KEYS, responses=error_responses(404))
async def delete_key(ops: NamedDependency[KeyOps], key_id: FromPath[str]) -> Data[ApiKeyView]:
    """Revoke a key (the same as `POST /{key_id}/revoke`)."""
    return await ops.revoke(key_id, None)


key_router = Router(
    path="/api/v1/keys",
    route_handlers=[create_key, list_keys, get_key, rotate_key, revoke_key, delete_key],
    dependencies={"ops": Provide(KeyOps, sync_to_thread=False)},
    tags=["keys"],
)


@post(
    "/api/v1/ws-tickets",
    status_code=201,
    opt={ACTION: Action.SUBSCRIBE, EVERY_NAMESPACE: True},
    tags=["keys"],
)
async def mint_ticket(
    request: Request[Any, Any, Any], tickets: NamedDependency[TicketStore]
) -> Data[Ticket]:
    """A single-use ticket for a browser's WebSocket (`?ticket=`), valid 30 seconds: it
    acts as the caller, so keys never travel in URLs."""
    ticket = await tickets.mint(principal(request))
    return Data(data=Ticket(ticket=ticket, expires_in=int(TICKET_TTL.total_seconds())))


identity_routes: list[Router | HTTPRouteHandler] = [key_router, mint_ticket]


async def record_key_use(commands: CommandClient, keys: KeyIndex, key_id: str) -> None:
    """Tell the registry a key was used (the authenticator calls this at most once a minute)."""
    key = keys.get(key_id)
    if key is None:
        return
    command = RecordApiKeyUse(namespace=key.namespace, key_id=key_id, actor=f"key:{key_id}")
    await commands.request(
        REGISTRY,
        "record_api_key_use",
        command,
        ApiKeyReply,
        request_id=new_id(),
        actor=command.actor,
    )
