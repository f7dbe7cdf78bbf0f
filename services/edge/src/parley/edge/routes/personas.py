"""`/api/v1/personas`: list, read, create and delete personas (named system prompts).

Built-in personas are in every namespace and read-only. Writes are registry commands; like
agents, a write answers once this edge's personas projection shows it (read your writes).
"""

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.contracts.personas import CreatePersona, DeletePersona, PersonaSpec, PersonaView
from parley.contracts.registry import CommandReply
from parley.edge._paging import page_by_key
from parley.edge.body import decode_body
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.request_ids import request_id
from parley.edge.routes.agents import provide_namespace
from parley.edge.schemas import Pagination

__all__ = ["persona_router"]

PREFIX = "/api/v1/personas"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class PersonaList(msgspec.Struct, kw_only=True):
    """A page of personas: built-ins first, then created ones by name."""

    data: list[PersonaView]
    pagination: Pagination


class PersonaResponse(msgspec.Struct, kw_only=True):
    """One persona."""

    data: PersonaView


class DeletedPersona(msgspec.Struct, kw_only=True):
    """What a delete did."""

    name: str
    """The deleted persona's name."""
    deleted: bool
    """Always true."""
    version: int
    """Stream version of the `persona.deleted` event."""


class DeletedPersonaResponse(msgspec.Struct, kw_only=True):
    """The outcome of `DELETE /personas/{name}`."""

    data: DeletedPersona


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(ErrorEnvelope, description="Error envelope") for c in codes}


def _not_found(name: str, namespace: str) -> ApiError:
    return ApiError(
        ErrorCode.PERSONA_NOT_FOUND,
        f"no persona {name[:64]!r} in namespace {namespace}",
        {"name": name[:64]},
    )


async def _run(
    request: Request[Any, Any, Any], state: State, verb: str, command: CreatePersona | DeletePersona
) -> CommandReply:
    """Send ``command``, then wait until this edge's personas projection shows its effect."""
    reply: CommandReply = await state.commands.send(
        verb,
        command,  # type: ignore[arg-type]
        request_id=request_id(request.scope),
        traceparent=request.headers.get("traceparent"),
    )
    if not await state.personas.wait_for(reply.position, state.settings.read_your_writes_timeout):
        raise ApiError(
            ErrorCode.TIMEOUT,
            f"the change was recorded (version {reply.version}) but is not visible yet; read"
            " the persona again shortly",
            {"version": reply.version, "position": reply.position},
        )
    return reply


@get("/", summary="List personas", responses=_errors(400, 422))
async def list_personas(
    state: State,
    ns: str,
    tag: Annotated[str | None, Parameter(required=False, description="Only with this tag.")] = None,
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> PersonaList:
    """Built-in personas and the namespace's created ones."""
    found = [p for p in state.personas.personas(ns) if tag is None or tag in p.tags]
    page, pagination = page_by_key(
        found, lambda p: f"{0 if p.builtin else 1}:{p.name}", limit=limit, cursor=cursor
    )
    return PersonaList(data=page, pagination=pagination)


@get("/{name:str}", summary="Read a persona", responses=_errors(404))
async def get_persona(state: State, ns: str, name: str) -> PersonaResponse:
    """One persona, built-in or created."""
    view = state.personas.get(ns, name)
    if view is None:
        raise _not_found(name, ns)
    return PersonaResponse(data=view)


@post(
    "/",
    status_code=201,
    summary="Create a persona",
    description="A name already used by a created or built-in persona is `409 PERSONA_EXISTS`.",
    opt={"body": PersonaSpec},
    responses=_errors(400, 409, 413, 415, 422, 503, 504),
)
async def create_persona(
    request: Request[Any, Any, Any], state: State, ns: str
) -> Response[PersonaResponse]:
    """Create a persona in the namespace."""
    spec = await decode_body(request, PersonaSpec)
    command = CreatePersona(namespace=ns, request_id=request_id(request.scope), spec=spec)
    await _run(request, state, "create_persona", command)
    view = state.personas.get(ns, spec.name)
    if view is None:  # deleted by someone else between the command and now
        raise _not_found(spec.name, ns)
    return Response(
        PersonaResponse(data=view), status_code=201, headers={"Location": f"{PREFIX}/{spec.name}"}
    )


@delete(
    "/{name:str}",
    status_code=200,
    summary="Delete a persona",
    description="Built-in personas cannot be deleted (`409 PERSONA_READ_ONLY`).",
    responses=_errors(404, 409, 503, 504),
)
async def delete_persona(
    request: Request[Any, Any, Any], state: State, ns: str, name: str
) -> DeletedPersonaResponse:
    """Delete a created persona."""
    if not _NAME.match(name):
        raise _not_found(name, ns)
    command = DeletePersona(namespace=ns, request_id=request_id(request.scope), name=name)
    reply = await _run(request, state, "delete_persona", command)
    return DeletedPersonaResponse(
        data=DeletedPersona(name=name, deleted=True, version=reply.version)
    )


persona_router = Router(
    path=PREFIX,
    route_handlers=[list_personas, get_persona, create_persona, delete_persona],
    dependencies={"ns": Provide(provide_namespace)},
    tags=["personas"],
)
"""Every `/api/v1/personas` route."""
