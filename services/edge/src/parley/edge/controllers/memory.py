"""`/api/v1/agents/{id}/memory/…`: record an agent's entities, search its memory, its stats.

Writes are the registry's ``remember`` command, answered once this edge's memory projection
shows them. A search is the runtime's ``search_memory`` (the agent's provider's embeddings
where it has them, as its turns search); this edge's projection answers it when no runtime
is up, and answers the stats. An agent of another namespace is `404 AGENT_NOT_FOUND` here,
so a memory is never read or written across namespaces. :class:`MemoryPlugin` adds the
routes and the projection to the app (one line in its wiring).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import msgspec
from litestar import Litestar
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import Parameter
from litestar.params import QueryParameter
from litestar.plugins import InitPluginProtocol

from parley.contracts.errors import ErrorCode
from parley.contracts.memory import MemoryReply
from parley.contracts.memory import MemorySearch
from parley.contracts.memory import MemorySearchReply
from parley.contracts.memory import MemoryWrite
from parley.contracts.memory import Remember
from parley.contracts.memory import SearchMemory
from parley.contracts.memory import agent_memory
from parley.contracts.registry import SERVICE
from parley.contracts.runtime import SERVICE as RUNTIME
from parley.edge.controllers.lookups import AgentScope
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid
from parley.memory.book import MemoryProjection
from parley.memory.book import MemoryStats

__all__ = ["MemoryPlugin", "MemoryWritten", "memory_router"]


class MemoryWritten(msgspec.Struct, kw_only=True):
    """What a memory write did."""

    entities_created: int
    """New entities (a name the memory had already gets its new observations instead)."""
    entity_ids: list[str]
    """Id of each entity of the request, in its order."""
    relations_created: int
    """New relations."""
    status: str = "success"


class AgentMemory(AgentScope):
    """The memory of the agent in the path: which one it is, and the index to ask."""

    @property
    def index(self) -> MemoryProjection:
        """The edge's memory projection."""
        projection: MemoryProjection = self.request.app.state.memory
        return projection

    async def search(
        self, scope: str, text: str, limit: int, min_similarity: float
    ) -> MemorySearch:
        """Ask the runtime, which searches with the agent's provider's embeddings; with no
        runtime up, this edge's index (the local embedder) answers."""
        command = SearchMemory(
            namespace=self.ns,
            request_id=self.request_id,
            agent_id=self.id,
            query=text,
            limit=limit,
            min_similarity=min_similarity,
            # the index follows memories on a feed of its own, maybe ahead of the views
            min_position=max(self.edge.positions.runtime, self.index.applied_position),
        )
        try:
            reply = await self.writes.send(
                RUNTIME, "search_memory", command, MemorySearchReply, views=()
            )
        except ApiError as exc:
            if exc.code != ErrorCode.SERVICE_UNAVAILABLE:
                raise
            reply = MemorySearchReply(ok=False)
        if reply.found is not None:
            return reply.found
        return self.index.search(self.ns, scope, text, limit, min_similarity)

    def scope(self) -> tuple[str, str]:
        """The agent's ``memory.scope`` and the memory it names, or ``404 AGENT_NOT_FOUND``."""
        spec = self.live().spec
        return spec.memory.scope, agent_memory(spec, self.id)


@post(
    "/{agent_id:str}/memory/entities",
    status_code=201,
    summary="Record entities in an agent's memory",
    description="A name the memory has already gets only its new observations. Relations"
    " link entities of the memory or of this request.",
    opt={"body": MemoryWrite},
    responses=error_responses(404, 413, 415, 422, 503, 504),
)
async def remember(memory: NamedDependency[AgentMemory]) -> Response[Data[MemoryWritten]]:
    """Create entities and relations, or add observations to existing entities."""
    memory.scope()
    write = await memory.body(MemoryWrite)
    if not write.entities and not write.relations:
        raise invalid("body.entities", "give at least one entity or relation")
    command = Remember(
        namespace=memory.ns, request_id=memory.request_id, agent_id=memory.id, write=write
    )
    reply = await memory.writes.send(
        SERVICE, "remember", command, MemoryReply, views=(memory.index,), what="memory"
    )
    written = MemoryWritten(
        entities_created=reply.entities_created,
        entity_ids=reply.entity_ids,
        relations_created=reply.relations_created,
    )
    return Response(Data(data=written), status_code=201)


_Q = Parameter(required=False, max_length=4096, description="What to look for.")
_QUERY = QueryParameter(name="query", required=False, max_length=4096, description="Same as `q`.")


@get(
    "/{agent_id:str}/memory/search",
    summary="Search an agent's memory",
    description="Vector similarity (cosine, 0–1) of the query to each entity, and its"
    " keywords; results are ordered by 0.7 × similarity + 0.3 × keyword score. The vectors"
    " are the agent's provider's embeddings where it has them (`embedding_model`), else the"
    " local embedder's. `query` is Caxton's name for `q`.",
    responses=error_responses(404, 422, 504),
)
async def search_memory(
    memory: NamedDependency[AgentMemory],
    q: Annotated[str | None, _Q] = None,
    caxton_q: Annotated[str | None, _QUERY] = None,
    limit: Annotated[int, Parameter(ge=1, le=100, description="Most results.")] = 10,
    min_similarity: Annotated[
        float, Parameter(ge=0.0, le=1.0, description="Lowest similarity to return.")
    ] = 0.0,
) -> Data[MemorySearch]:
    """The entities nearest the query, best first."""
    _, scope = memory.scope()
    text = q if q is not None else caxton_q
    if text is None or not text.strip():
        raise invalid("query.q", "give the text to search for")
    return Data(data=await memory.search(scope, text, limit, min_similarity))


@get(
    "/{agent_id:str}/memory/stats",
    summary="Read an agent's memory stats",
    responses=error_responses(404),
)
async def memory_stats(memory: NamedDependency[AgentMemory]) -> Data[MemoryStats]:
    """How many entities, observations and relations the memory holds."""
    setting, scope = memory.scope()
    return Data(data=memory.index.stats(memory.ns, scope, setting))


memory_router = Router(
    path="/api/v1/agents",
    route_handlers=[remember, search_memory, memory_stats],
    dependencies={"memory": Provide(AgentMemory, sync_to_thread=False)},
    tags=["memory"],
)
"""Every `/api/v1/agents/{id}/memory` route."""


@asynccontextmanager
async def _memory_index(app: Litestar) -> AsyncIterator[None]:
    """Fold every memory from position 0 while the app runs (after the edge connects)."""
    projection = MemoryProjection(app.state.edge.store)
    app.state.memory = projection
    await projection.start()
    try:
        yield
    finally:
        await projection.stop()


class MemoryPlugin(InitPluginProtocol):
    """Adds the memory routes, and the memory projection to the app's lifespan."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(memory_router)
        app_config.lifespan.append(_memory_index)
        return app_config
