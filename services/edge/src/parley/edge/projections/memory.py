"""The memory projection: every memory folded with the aggregate's ``evolve``, and indexed
for search (:class:`~parley.edge.projections.memory_index.MemoryIndex`).

It follows only ``memory-*`` streams. Nothing is stored besides the events: a fresh edge
folds them again from position 0, and the same events give the same index.
"""

import time

import msgspec

from parley.aggregates.memory import Entity
from parley.aggregates.memory import Memory
from parley.aggregates.memory import evolve
from parley.contracts.envelope import Event
from parley.edge.projections.memory_index import EMBEDDER
from parley.edge.projections.memory_index import Hit
from parley.edge.projections.memory_index import MemoryIndex
from parley.edge.views import iso
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["MemoryHit", "MemoryProjection", "MemorySearch", "MemoryStats"]


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


class MemoryStats(msgspec.Struct, kw_only=True):
    """How big a memory is."""

    memory_scope: str
    """The agent's ``memory.scope``."""
    scope: str
    """The memory it reads and writes (`agent:<id>` or `namespace`)."""
    total_entities: int
    total_observations: int
    total_relations: int
    storage_used_bytes: int
    """Text and vectors held for the memory's search index."""
    last_updated: str | None
    embedding_model: str = EMBEDDER
    vector_index: str = "usearch HNSW, cosine"


class MemoryProjection(Follower):
    """Memories by namespace and scope, each with its search index."""

    categories = ("memory",)
    name = "memory-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._memories: dict[tuple[str, str], Memory] = {}
        self._indexes: dict[tuple[str, str], MemoryIndex] = {}

    def fold(self, event: Event) -> None:
        """Fold a memory event and index the entity it wrote."""
        key = (event.namespace, event.subject)
        state = evolve(self._memories.get(key), event)
        if state is None:
            return
        self._memories[key] = state
        name = event.data.get("name") if isinstance(event.data, dict) else None
        entity = state.entities.get(name) if isinstance(name, str) else None
        if entity is not None:
            index = self._indexes.setdefault(key, MemoryIndex())
            index.put(entity.name, _text(entity))

    def search(
        self, namespace: str, scope: str, query: str, limit: int, min_similarity: float
    ) -> MemorySearch:
        """Up to ``limit`` entities of the memory nearest ``query``, best first."""
        started = time.perf_counter()
        memory = self._memories.get((namespace, scope))
        index = self._indexes.get((namespace, scope))
        if memory is None or index is None:
            return MemorySearch(results=[], total=0, query_time_ms=0.0)
        hits = [h for h in index.search(query) if h.similarity >= min_similarity]
        results = [_hit(memory.entities[hit.name], hit) for hit in hits[:limit]]
        took = (time.perf_counter() - started) * 1000
        return MemorySearch(results=results, total=len(hits), query_time_ms=round(took, 3))

    def stats(self, namespace: str, scope: str, memory_scope: str) -> MemoryStats:
        """The size of the memory ``scope`` of ``namespace``."""
        memory = self._memories.get((namespace, scope))
        index = self._indexes.get((namespace, scope))
        entities = list(memory.entities.values()) if memory is not None else []
        text = sum(len(_text(e).encode()) for e in entities)
        return MemoryStats(
            memory_scope=memory_scope,
            scope=scope,
            total_entities=len(entities),
            total_observations=sum(len(e.observations) for e in entities),
            total_relations=len(memory.relations) if memory is not None else 0,
            storage_used_bytes=text + (index.vector_bytes() if index is not None else 0),
            last_updated=iso(memory.updated_at) if memory is not None else None,
        )


def _hit(entity: Entity, hit: Hit) -> MemoryHit:
    return MemoryHit(
        entity_id=entity.id,
        entity_name=entity.name,
        entity_type=entity.entity_type,
        observations=list(entity.observations),
        similarity=round(hit.similarity, 4),
        keyword_score=round(hit.keyword, 4),
        score=round(hit.score, 4),
        created_at=iso(entity.created_at),
        updated_at=iso(entity.updated_at),
    )


def _text(entity: Entity) -> str:
    """What an entity's embedding and words are made of."""
    return "\n".join((entity.name, entity.entity_type, *entity.observations))
