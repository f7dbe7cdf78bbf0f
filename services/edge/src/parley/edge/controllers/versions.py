"""An agent's versions: `GET /agents/{id}/versions`, `/versions/{n}` and
`/versions/{a}/diff/{b}`, read from the agent's stream (every definition change is a
version; see :mod:`parley.edge.projections.versions`)."""

from litestar import Router
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import agent_stream
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import AgentScope
from parley.edge.controllers.lookups import require_agent
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import error_responses
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.versions import AgentVersion
from parley.edge.projections.versions import VersionDiff
from parley.edge.projections.versions import diff
from parley.edge.projections.versions import versions
from parley.eventstore.port import EventStore

__all__ = ["agent_versions", "version_router"]


async def agent_versions(
    store: EventStore, agents: AgentsProjection, namespace: str, agent_id: str
) -> list[AgentVersion]:
    """Every version of the live agent ``agent_id`` of ``namespace``, oldest first.

    Raises:
        ParleyError: ``AGENT_NOT_FOUND``.
    """
    require_agent(agents, namespace, agent_id)
    _, found = versions(await store.read(agent_stream(agent_id)))
    return found


async def _versions(agent: AgentScope) -> list[AgentVersion]:
    """The versions of the agent a route names (``404 AGENT_NOT_FOUND``)."""
    return await agent_versions(agent.edge.store, agent.agents, agent.ns, agent.id)


def _pick(found: list[AgentVersion], agent_id: str, number: int) -> AgentVersion:
    if not 1 <= number <= len(found):
        raise ParleyError(
            ErrorCode.NOT_FOUND,
            f"agent {agent_id} has no version {number} (it has 1 to {len(found)})",
            {"agent_id": agent_id, "version": number, "latest": len(found)},
        )
    return found[number - 1]


@get(
    "/{agent_id:str}/versions",
    summary="List an agent's versions",
    description="Every change of the agent's definition is a numbered version (1 is the"
    " definition it was created with), with the fields it changed and the whole definition.",
    responses=error_responses(404),
)
async def list_versions(agent: NamedDependency[AgentScope]) -> Data[list[AgentVersion]]:
    """The agent's versions, oldest first."""
    return Data(data=await _versions(agent))


@get(
    "/{agent_id:str}/versions/{number:int}",
    summary="Read one version of an agent",
    responses=error_responses(404),
)
async def get_version(
    agent: NamedDependency[AgentScope], number: FromPath[int]
) -> Data[AgentVersion]:
    """Version ``number`` of the agent's definition."""
    return Data(data=_pick(await _versions(agent), agent.id, number))


@get(
    "/{agent_id:str}/versions/{number:int}/diff/{other:int}",
    summary="Compare two versions of an agent",
    description="The fields (dotted paths) whose values differ from version `number` to"
    " version `other`, with both values.",
    responses=error_responses(404),
)
async def diff_versions(
    agent: NamedDependency[AgentScope], number: FromPath[int], other: FromPath[int]
) -> Data[VersionDiff]:
    """What changed from one version to another."""
    found = await _versions(agent)
    return Data(data=diff(agent.id, _pick(found, agent.id, number), _pick(found, agent.id, other)))


version_router = Router(
    path="/api/v1/agents",
    route_handlers=[list_versions, get_version, diff_versions],
    dependencies=AGENT_SCOPE,
    tags=["agents"],
)
"""`GET /agents/{id}/versions`, `/versions/{n}`, `/versions/{a}/diff/{b}`."""
