"""`/api/v1/agents`: create, list, read, patch and delete (the lifecycle is :mod:`.agent_actions`).

Writes are commands to the registry over NATS; after a successful command the response waits
(bounded by ``read_your_writes_timeout``) until this edge's projection has applied the
command's position, then answers from the projection, so a `GET` after a write never reads
stale data. `DELETE` answers `200` with `{"data": {"id", "deleted": true, "version"}}`.
"""

import uuid
from typing import Annotated

import msgspec
from litestar import Response
from litestar import Router
from litestar import delete
from litestar import get
from litestar import patch
from litestar import post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.params import Parameter

from parley.contracts.registry import SERVICE
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.contracts.registry import AgentView
from parley.contracts.registry import CommandReply
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import RegistryCommand
from parley.contracts.registry import UpdateAgent
from parley.edge.controllers.agent_list import SORT_FIELDS
from parley.edge.controllers.agent_list import AgentFilter
from parley.edge.controllers.agent_list import paginate
from parley.edge.controllers.agent_list import parse_labels
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import ID
from parley.edge.controllers.lookups import AgentScope
from parley.edge.controllers.lookups import agent_not_found
from parley.edge.controllers.resources import SCOPE
from parley.edge.controllers.resources import Scope
from parley.edge.dependencies import Writes
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.envelopes import Pagination
from parley.edge.http.envelopes import versioned
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid_value
from parley.edge.http.guards import idempotent_id
from parley.edge.http.guards import one_at_a_time
from parley.edge.http.guards import replay_headers
from parley.edge.http.paging import Paging
from parley.edge.http.params import ExactName
from parley.edge.http.params import Labels
from parley.edge.http.params import many_of
from parley.edge.http.params import one_of
from parley.edge.http.params import optional_header
from parley.edge.projections.agents import AgentsProjection

_STATES = [s.value for s in AgentState]
_SORT = f"^({'|'.join(SORT_FIELDS)})(:(asc|desc))?$"
"""The `sort` of the list (the schema names the lowercase form; any case is accepted)."""

__all__ = [
    "DeletedAgent",
    "agent_router",
    "checked_id",
    "send_registry",
    "view_after",
]

PREFIX = "/api/v1/agents"
_IDEMPOTENCY_NS = uuid.UUID("6f1c1d2e-7a0b-5c3d-9e4f-5061a2b3c4d5")


class DeletedAgent(msgspec.Struct, kw_only=True):
    """What a delete did."""

    id: str
    """The deleted agent's id."""
    deleted: bool
    """Always true."""
    version: int
    """Stream version of the `agent.deleted` event."""


def checked_id(agent_id: str, namespace: str) -> str:
    """``agent_id`` if it can name an agent, else ``404 AGENT_NOT_FOUND``."""
    if not ID.match(agent_id):
        raise agent_not_found(agent_id, namespace)
    return agent_id


async def send_registry(
    writes: Writes, agents: AgentsProjection, verb: str, command: RegistryCommand
) -> CommandReply:
    """Send ``command``, then wait until this edge's projection shows its effect."""
    return await writes.send(SERVICE, verb, command, CommandReply, views=(agents,), what="agent")


def view_after(agents: AgentsProjection, namespace: str, agent_id: str) -> AgentView:
    """The agent after a write, or ``404`` if someone deleted it meanwhile."""
    view = agents.get(namespace, agent_id)
    if view is None:  # deleted by someone else between the command and now
        raise agent_not_found(agent_id, namespace)
    return view


# --- handlers --------------------------------------------------------------------------------


@post(
    "/",
    status_code=201,
    summary="Create an agent",
    description="JSON `AgentSpec` or, with `Content-Type: application/toml`, the same as TOML."
    " With `Idempotency-Key`, a retry returns the same agent (200) instead of a conflict.",
    opt={"body": AgentSpec},
    responses={
        200: ResponseSpec(Data[AgentView], description="A replay of an `Idempotency-Key`."),
        **error_responses(400, 409, 413, 415, 422, 503, 504),
    },
)
async def create_agent(
    ctx: NamedDependency[Scope],
    idempotency_key: Annotated[
        str | None, optional_header("Idempotency-Key", "Retry-safe create.")
    ] = None,
) -> Response[Data[AgentView]]:
    """Register an agent; it starts in state `created`."""
    spec = await ctx.body(AgentSpec)
    agents, ns = ctx.edge.agents, ctx.ns
    agent_id = None
    if idempotency_key is not None:
        agent_id = idempotent_id(idempotency_key, ns, _IDEMPOTENCY_NS)
    async with one_at_a_time(agent_id):  # a concurrent replay answers after the first
        existed = agent_id is not None and agents.get(ns, agent_id) is not None
        command = CreateAgent(namespace=ns, request_id=ctx.request_id, spec=spec, agent_id=agent_id)
        reply = await send_registry(ctx.writes, agents, "create_agent", command)
    view = view_after(agents, ns, reply.agent_id or "")
    replayed = existed or reply.version > 1
    headers = replay_headers(f"{PREFIX}/{view.id}", replayed)
    return versioned(view, 200 if replayed else 201, **headers)


@get(
    "/",
    summary="List agents",
    description="Filters combine with AND; repeated `state`/`capability` values with OR;"
    " every `label=key=value` must match. `sort=name|created_at|updated_at|state:asc|desc`.",
    responses=error_responses(400, 422),
)
async def list_agents(
    paging: NamedDependency[Paging],
    agents: NamedDependency[AgentsProjection],
    ns: NamedDependency[str],
    agent_state: Annotated[
        list[str] | None, many_of(_STATES, "Lifecycle state.", query="state")
    ] = None,
    status: Annotated[list[str] | None, many_of(_STATES, "Alias of `state`.")] = None,
    capability: Annotated[list[str] | None, Parameter(required=False)] = None,
    label: Labels = None,
    trigger: Annotated[str | None, one_of(("manual", "webhook", "periodic"))] = None,
    name: ExactName = None,
    sort: Annotated[
        str, Parameter(description="`field:asc|desc`.", schema_extra={"pattern": _SORT})
    ] = "created_at:asc",
) -> Page[AgentView]:
    """A page of the namespace's agents."""
    trigger = trigger.lower() if trigger is not None else None
    if trigger is not None and trigger not in ("manual", "webhook", "periodic"):
        raise invalid_value("trigger", trigger, "expected manual, webhook or periodic")
    states = set()
    for value in [*(agent_state or ()), *(status or ())]:
        try:
            states.add(AgentState(value.lower()))
        except ValueError:
            message = "expected one of " + ", ".join(s.value for s in AgentState)
            raise invalid_value("state", value, message) from None
    wanted = AgentFilter(
        states=frozenset(states),
        capabilities=frozenset(capability or ()),
        labels=parse_labels(label or ()),
        trigger=trigger,
        name=name,
    )
    page = paginate(agents.find(ns, wanted), sort=sort, limit=paging.limit, cursor=paging.cursor)
    return Page(
        data=page.items,
        pagination=Pagination(
            limit=paging.limit,
            next_cursor=page.next_cursor,
            has_more=page.next_cursor is not None,
            total_count=page.total_count,
        ),
    )


@get("/{agent_id:str}", summary="Read an agent", responses=error_responses(404))
async def get_agent(
    agents: NamedDependency[AgentsProjection], ns: NamedDependency[str], agent_id: FromPath[str]
) -> Response[Data[AgentView]]:
    """One agent, with its version as the `ETag`."""
    view = agents.get(ns, checked_id(agent_id, ns))
    if view is None:
        raise agent_not_found(agent_id, ns)
    return versioned(view)


@patch(
    "/{agent_id:str}",
    summary="Update an agent",
    description="Fields present replace the definition's; labels merge (null removes a key).",
    opt={"body": AgentPatch},
    responses=error_responses(400, 404, 409, 413, 415, 422, 503, 504),
)
async def update_agent(
    agent: NamedDependency[AgentScope],
    expected_version: NamedDependency[int | None],
) -> Response[Data[AgentView]]:
    """Change an agent's definition (a new version)."""
    checked_id(agent.id, agent.ns)
    change = await agent.body(AgentPatch)
    command = UpdateAgent(
        namespace=agent.ns,
        request_id=agent.request_id,
        agent_id=agent.id,
        patch=change,
        expected_version=expected_version,
    )
    await send_registry(agent.writes, agent.agents, "update_agent", command)
    return versioned(view_after(agent.agents, agent.ns, agent.id))


@delete(
    "/{agent_id:str}",
    status_code=200,
    summary="Delete an agent",
    description="Tombstones the agent: its events stay, it leaves every view, its name is"
    " freed. Answers 200 with the deletion's version.",
    responses=error_responses(400, 404, 409, 503, 504),
)
async def delete_agent(
    agent: NamedDependency[AgentScope],
    expected_version: NamedDependency[int | None],
) -> Data[DeletedAgent]:
    """Delete an agent."""
    checked_id(agent.id, agent.ns)
    command = DeleteAgent(
        namespace=agent.ns,
        request_id=agent.request_id,
        agent_id=agent.id,
        expected_version=expected_version,
    )
    reply = await send_registry(agent.writes, agent.agents, "delete_agent", command)
    return Data(data=DeletedAgent(id=agent.id, deleted=True, version=reply.version))


agent_router = Router(
    path=PREFIX,
    route_handlers=[
        create_agent,
        list_agents,
        get_agent,
        update_agent,
        delete_agent,
    ],
    dependencies={**AGENT_SCOPE, **SCOPE},
    tags=["agents"],
)
"""Every `/api/v1/agents` route."""
