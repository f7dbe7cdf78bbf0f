"""`/api/v1/personas`: list, read, create and delete personas (named system prompts).

Built-in personas are in every namespace and read-only. Writes are registry commands; like
agents, a write answers once this edge's personas projection shows it (read your writes).
"""

import re
from typing import Annotated

import msgspec
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.personas import CreatePersona
from parley.contracts.personas import DeletePersona
from parley.contracts.personas import PersonaSpec
from parley.contracts.personas import PersonaView
from parley.contracts.registry import SERVICE
from parley.contracts.registry import CommandReply
from parley.edge.controllers.resources import Resource
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import created
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import not_found
from parley.edge.http.paging import Paging
from parley.edge.projections.personas import PersonasProjection
from parley.eventstore.follower import Follower

__all__ = ["DeletedPersona", "Personas", "persona_router"]

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


class Personas(Resource[PersonaView, CommandReply]):
    """The persona routes' reads and writes."""

    service, reply, what = SERVICE, CommandReply, "persona"

    def views(self) -> tuple[Follower, ...]:
        return (self.edge.personas,)

    def find(self, key: str, namespace: str) -> PersonaView | None:
        return self.edge.personas.get(namespace, key)

    def missing(self, key: str, namespace: str) -> ParleyError:
        return not_found(ErrorCode.PERSONA_NOT_FOUND, "persona", "name", key, namespace, quote=True)


@get("/", summary="List personas", responses=error_responses(400, 422))
async def list_personas(
    personas: NamedDependency[PersonasProjection],
    ns: NamedDependency[str],
    paging: NamedDependency[Paging],
    tag: Annotated[str | None, Parameter(required=False, description="Only with this tag.")] = None,
) -> Page[PersonaView]:
    """Built-in personas and the namespace's created ones."""
    found = [p for p in personas.personas(ns) if tag is None or tag in p.tags]
    return paging.page(found, lambda p: f"{0 if p.builtin else 1}:{p.name}")


@get("/{name:str}", summary="Read a persona", responses=error_responses(404))
async def get_persona(persona: NamedDependency[Personas], name: FromPath[str]) -> Data[PersonaView]:
    """One persona, built-in or created."""
    return Data(data=persona.get(name))


@post(
    "/",
    status_code=201,
    summary="Create a persona",
    description="A name already used by a created or built-in persona is `409 PERSONA_EXISTS`.",
    opt={"body": PersonaSpec},
    responses=error_responses(400, 409, 413, 415, 422, 503, 504),
)
async def create_persona(persona: NamedDependency[Personas]) -> Response[Data[PersonaView]]:
    """Create a persona in the namespace."""
    spec = await persona.body(PersonaSpec)
    command = CreatePersona(namespace=persona.ns, request_id=persona.request_id, spec=spec)
    await persona.run("create_persona", command)
    return created(persona.get(spec.name), f"{PREFIX}/{spec.name}")


@delete(
    "/{name:str}",
    status_code=200,
    summary="Delete a persona",
    description="Built-in personas cannot be deleted (`409 PERSONA_READ_ONLY`).",
    responses=error_responses(404, 409, 503, 504),
)
async def delete_persona(
    persona: NamedDependency[Personas], name: FromPath[str]
) -> Data[DeletedPersona]:
    """Delete a created persona."""
    if not _NAME.match(name):
        raise persona.missing(name, persona.ns)
    command = DeletePersona(namespace=persona.ns, request_id=persona.request_id, name=name)
    reply = await persona.run("delete_persona", command)
    return Data(data=DeletedPersona(name=name, deleted=True, version=reply.version))


persona_router = Router(
    path=PREFIX,
    route_handlers=[list_personas, get_persona, create_persona, delete_persona],
    dependencies={"persona": Provide(Personas, sync_to_thread=False)},
    tags=["personas"],
)
"""Every `/api/v1/personas` route."""
