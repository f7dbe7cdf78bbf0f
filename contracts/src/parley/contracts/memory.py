"""Agent memory: entities (a name, a type, observations) and relations between them.

A memory belongs to a scope of one namespace, named by :func:`memory_scope` from the
agent's ``memory.scope`` (``agent``: the agent's own; ``cluster``: shared by the agents of its
cluster, the agent's own when it is in none; ``namespace``: shared by every agent of the
namespace; ``session`` is the agent's own outside a session). Its events are on stream
``memory_stream(namespace, scope)``; the registry decides them, the edge indexes them.
"""

from typing import Annotated

import msgspec
from msgspec import Meta

from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.commands import Command
from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.ids import NameStream
from parley.contracts.registry import AgentSpec

__all__ = [
    "EVENT_TYPES",
    "EntityCreated",
    "MemoryEntity",
    "MemoryHit",
    "MemoryReply",
    "MemorySearch",
    "MemorySearchReply",
    "MemoryWrite",
    "ObservationsAdded",
    "Relation",
    "RelationCreated",
    "Remember",
    "SearchMemory",
    "agent_memory",
    "memory_scope",
    "memory_stream",
]

EntityName = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"\S")]
EntityType = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Observation = Annotated[str, Meta(min_length=1, max_length=4096, pattern=r"\S")]


class MemoryEntity(Strict):
    """Something an agent knows about, and what it has observed of it."""

    name: EntityName
    """Unique in its memory; a second write of the name adds its new observations."""
    entity_type: EntityType | None = None
    """What kind of thing it is (`person`, `business_insight`, …); required."""
    entityType: EntityType | None = None  # noqa: N815 - Caxton's spelling, on the wire
    """Caxton's name for `entity_type` (give one of the two)."""
    observations: Annotated[list[Observation], Meta(max_length=64)] = []
    """Facts about it, one sentence each."""

    def __post_init__(self) -> None:
        if self.entity_type is None:
            self.entity_type, self.entityType = self.entityType, None
        if self.entity_type is None:
            raise ValueError("give the entity's entity_type")

    @property
    def kind(self) -> str:
        """Its ``entity_type`` (never None once decoded)."""
        return self.entity_type or ""


class Relation(Strict):
    """A directed, typed link between two entities of one memory."""

    from_entity: EntityName
    """The source entity's name."""
    to_entity: EntityName
    """The target entity's name."""
    relation_type: EntityType
    """What the link means (`works_at`, `depends_on`, …)."""


class MemoryWrite(Strict):
    """The body of `POST /agents/{id}/memory/entities`."""

    entities: Annotated[list[MemoryEntity], Meta(max_length=64)] = []
    """Entities to create, or to add observations to."""
    relations: Annotated[list[Relation], Meta(max_length=256)] = []
    """Relations to create; both ends must be in the memory or in ``entities``."""


# --- commands ---------------------------------------------------------------------------


class Remember(Command, kw_only=True):
    """Record entities and relations in the memory of an agent (registry ``remember``)."""

    agent_id: str
    """The agent whose memory it is; another namespace's agent is `AGENT_NOT_FOUND`."""
    write: MemoryWrite
    """What to record."""
    scope: str | None = None
    """The memory written; the registry sets it from the agent's ``memory.scope``."""


class MemoryReply(Reply, kw_only=True):
    """What a ``remember`` did."""

    entity_ids: list[str] = []
    """Id of each written entity, in request order (an existing entity keeps its id)."""
    entities_created: int = 0
    """How many of them are new."""
    relations_created: int = 0
    """New relations (a relation recorded before is not counted again)."""


# --- events (data of memory.* events) ---------------------------------------------------


class _MemoryEvent(msgspec.Struct, kw_only=True):
    """What every ``memory.*`` event starts with: which memory."""

    scope: str
    """The memory's scope (:func:`memory_scope`)."""
    agent_id: str
    """The agent that wrote it."""


class EntityCreated(_MemoryEvent, kw_only=True):
    """An entity was recorded."""

    entity_id: str
    name: str
    entity_type: str
    observations: list[str] = []


class ObservationsAdded(_MemoryEvent, kw_only=True):
    """New observations of an existing entity (ones it had already are not repeated)."""

    entity_id: str
    name: str
    observations: list[str]


class RelationCreated(_MemoryEvent, kw_only=True):
    """A relation between two entities was recorded."""

    relation: Relation


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "memory.entity_created": EntityCreated,
    "memory.observations_added": ObservationsAdded,
    "memory.relation_created": RelationCreated,
}
"""Event type name → payload type, for every memory event."""


def memory_scope(scope: str, agent_id: str, cluster: str | None = None) -> str:
    """The memory an agent with ``memory.scope`` = ``scope`` reads and writes (``cluster``:
    the name of the cluster it belongs to, if any)."""
    if scope == "namespace":
        return "namespace"
    if scope == "cluster" and cluster:
        return f"cluster:{cluster}"
    return f"agent:{agent_id}"


def agent_memory(spec: AgentSpec, agent_id: str) -> str:
    """The memory the agent ``agent_id`` defined by ``spec`` reads and writes (its cluster
    is the one its ``parley.dev/cluster`` label names)."""
    return memory_scope(spec.memory.scope, agent_id, spec.labels.get(CLUSTER_LABEL))


memory_stream = NameStream("memory")
"""Stream name of a memory's events (the scope hashed, as in ``named_stream``)."""


# --- search (runtime ``search_memory``: the agent's provider's embeddings) --------------


class MemoryHit(msgspec.Struct, kw_only=True):
    """An entity a memory search found."""

    entity_id: str
    entity_name: str
    entity_type: str
    observations: list[str]
    similarity: float
    """Cosine similarity of the query's and the entity's embeddings, 0–1."""
    keyword_score: float
    """Share of the query's words the entity has, 0–1."""
    score: float
    """What the results are ordered by: 0.7 × similarity + 0.3 × keyword score."""
    created_at: str
    updated_at: str


class MemorySearch(msgspec.Struct, kw_only=True):
    """A memory search's answer."""

    results: list[MemoryHit]
    total: int
    """Matches at or above ``min_similarity`` (``results`` holds up to ``limit`` of them)."""
    query_time_ms: float
    embedding_model: str
    """Whose vectors the similarity compares: the local embedder's
    (`parley-hashed-ngrams-256`) or the agent's provider's (`openai:<model>`)."""


class SearchMemory(Command, kw_only=True):
    """Search the memory of an agent (runtime ``search_memory``), with its provider's
    embeddings where it has them; another namespace's agent is `AGENT_NOT_FOUND`."""

    agent_id: str
    query: str
    limit: int = 10
    min_similarity: float = 0.0
    min_position: int = 0
    """The runtime first waits (bounded) until its agents' view and memory index have
    applied this position (the edge's, so what the edge shows is searched)."""


class MemorySearchReply(Reply, kw_only=True):
    """A ``search_memory``'s answer."""

    found: MemorySearch | None = None
