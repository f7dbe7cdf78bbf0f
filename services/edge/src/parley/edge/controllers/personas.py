"""`/api/v1/personas`: list, read, create and delete personas (named system prompts).

Built-in personas are in every namespace and read-only. Writes are registry commands; like
agents, a write answers once this edge's personas projection shows it (read your writes).
"""

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from parley.contracts.errors import ErrorCode, ParleyError
from parley.contracts.personas import CreatePersona, DeletePersona, PersonaSpec, PersonaView
from parley.contracts.registry import SERVICE, CommandReply
from parley.edge.dependencies import Writes
from parley.edge.http.body import decode_body
from parley.edge.http.envelopes import Data, Page
from parley.edge.http.errors import error_responses, not_found
from parley.edge.http.paging import Cursor, Limit, page_by_key
from parley.edge.http.request_ids import request_id
from parley.edge.projections.personas import PersonasProjection

__all__ = ["DeletedPersona", "persona_router"]

PREFIX = "/api/v1/personas"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class DeletedPersona(msgspec.Struct, kw_only=True):
    """What a delete did."""

    name: str
    """The deleted persona's name."""
    deleted: bool
    """Always true."""
    version: int
    """Stream version of the `persona.deleted` event."""


def _not_found(name: str, namespace: str) -> ParleyError:
    return not_found(ErrorCode.PERSONA_NOT_FOUND, "persona", "name", name, namespace, quote=True)


async def _run(
    writes: Writes, personas: PersonasProjection, verb: str, command: msgspec.Struct
) -> CommandReply:
    """Send ``command``, then wait until this edge's personas projection shows its effect."""
    return await writes.send(
        SERVICE, verb, command, CommandReply, views=(personas,), what="persona"
    )


@get("/", summary="List personas", responses=error_responses(400, 422))
async def list_personas(
    personas: NamedDependency[PersonasProjection],
    ns: NamedDependency[str],
    tag: Annotated[str | None, Parameter(required=False, description="Only with this tag.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PersonaView]:
    """Built-in personas and the namespace's created ones."""
    found = [p for p in personas.personas(ns) if tag is None or tag in p.tags]
    return page_by_key(
        found, lambda p: f"{0 if p.builtin else 1}:{p.name}", limit=limit, cursor=cursor
    )


@get("/{name:str}", summary="Read a persona", responses=error_responses(404))
async def get_persona(
    personas: NamedDependency[PersonasProjection], ns: NamedDependency[str], name: FromPath[str]
) -> Data[PersonaView]:
    """One persona, built-in or created."""
    view = personas.get(ns, name)
    if view is None:
        raise _not_found(name, ns)
    return Data(data=view)


@post(
    "/",
    status_code=201,
    summary="Create a persona",
    description="A name already used by a created or built-in persona is `409 PERSONA_EXISTS`.",
    opt={"body": PersonaSpec},
    responses=error_responses(400, 409, 413, 415, 422, 503, 504),
)
async def create_persona(
    request: Request[Any, Any, Any],
    personas: NamedDependency[PersonasProjection],
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
) -> Response[Data[PersonaView]]:
    """Create a persona in the namespace."""
    spec = await decode_body(request, PersonaSpec)
    command = CreatePersona(namespace=ns, request_id=request_id(request.scope), spec=spec)
    await _run(writes, personas, "create_persona", command)
    view = personas.get(ns, spec.name)
    if view is None:  # deleted by someone else between the command and now
        raise _not_found(spec.name, ns)
    return Response(Data(data=view), status_code=201, headers={"Location": f"{PREFIX}/{spec.name}"})


@delete(
    "/{name:str}",
    status_code=200,
    summary="Delete a persona",
    description="Built-in personas cannot be deleted (`409 PERSONA_READ_ONLY`).",
    responses=error_responses(404, 409, 503, 504),
)
async def delete_persona(
    request: Request[Any, Any, Any],
    personas: NamedDependency[PersonasProjection],
    writes: NamedDependency[Writes],
    ns: NamedDependency[str],
    name: FromPath[str],
) -> Data[DeletedPersona]:
    """Delete a created persona."""
    if not _NAME.match(name):
        raise _not_found(name, ns)
    command = DeletePersona(namespace=ns, request_id=request_id(request.scope), name=name)
    reply = await _run(writes, personas, "delete_persona", command)
    return Data(data=DeletedPersona(name=name, deleted=True, version=reply.version))


persona_router = Router(
    path=PREFIX,
    route_handlers=[list_personas, get_persona, create_persona, delete_persona],
    tags=["personas"],
)
"""Every `/api/v1/personas` route."""
