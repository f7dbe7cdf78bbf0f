"""The memory projection: every memory folded with the aggregate's ``evolve``, and indexed
for search (:class:`~parley.memory.index.MemoryIndex`). The edge serves the memory routes
from one; each runtime process keeps its own for its agents' turns and tools.

It follows only ``memory-*`` streams. Nothing is stored besides the events: a fresh process
folds them again from position 0, and the same events give the same index. A search may name
an :class:`Embedder` (the agent's provider's): the entities' vectors in its space are made
on the first search that needs them (one batched call with the query), and kept.
"""

import logging
import time
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Protocol

import msgspec
import numpy as np

from parley.aggregates.memory import Entity
from parley.aggregates.memory import Memory
from parley.aggregates.memory import evolve
from parley.contracts.envelope import Event
from parley.contracts.memory import MemoryHit
from parley.contracts.memory import MemorySearch
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower
from parley.memory.index import EMBEDDER
from parley.memory.index import Hit
from parley.memory.index import MemoryIndex
from parley.memory.index import Vector
from parley.memory.index import unit

__all__ = ["Embedder", "MemoryHit", "MemoryProjection", "MemorySearch", "MemoryStats"]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Embeddings from a provider (e.g. :class:`parley.llm.embeddings.OpenAIEmbeddings`)."""

    @property
    def name(self) -> str:
        """The vector space's name: provider and model (``openai:text-embedding-3-small``)."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises on any failure."""
        ...


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
        self,
        namespace: str,
        scope: str,
        query: str,
        limit: int,
        min_similarity: float,
        *,
        vector: Vector | None = None,
        space: str = EMBEDDER,
        started: float | None = None,
    ) -> MemorySearch:
        """Up to ``limit`` entities of the memory nearest ``query``, best first (by the local
        embedder, unless ``vector`` is the query's embedding in ``space``)."""
        started = time.perf_counter() if started is None else started
        memory = self._memories.get((namespace, scope))
        index = self._indexes.get((namespace, scope))
        if memory is None or index is None:
            return MemorySearch(results=[], total=0, query_time_ms=0.0, embedding_model=space)
        found = index.search(query, vector, space)
        hits = [h for h in found if h.similarity >= min_similarity]
        results = [_hit(memory.entities[hit.name], hit) for hit in hits[:limit]]
        took = (time.perf_counter() - started) * 1000
        return MemorySearch(
            results=results, total=len(hits), query_time_ms=round(took, 3), embedding_model=space
        )

    async def search_by(
        self,
        embedder: Embedder | None,
        namespace: str,
        scope: str,
        query: str,
        limit: int,
        min_similarity: float = 0.0,
    ) -> MemorySearch:
        """:meth:`search` with ``embedder``'s vectors (the local embedder's when None, or
        when the provider fails: that is logged, and the answer names the local space)."""
        started = time.perf_counter()
        index = self._indexes.get((namespace, scope))
        if embedder is None or index is None:
            return self.search(namespace, scope, query, limit, min_similarity, started=started)
        missing = index.missing(embedder.name)
        try:
            vectors = await embedder.embed([query, *missing.values()])
        except Exception as exc:  # any provider failure: search by the local embedder
            log.warning("embeddings from %s failed (%s); searching locally", embedder.name, exc)
            return self.search(namespace, scope, query, limit, min_similarity, started=started)
        if len(vectors) != len(missing) + 1:
            log.warning("embeddings from %s: not one per text; searching locally", embedder.name)
            return self.search(namespace, scope, query, limit, min_similarity, started=started)
        arrays = [unit(np.asarray(v, dtype=np.float32)) for v in vectors]
        pairs = zip(missing.items(), arrays[1:], strict=True)
        index.fill(embedder.name, {name: (text, vector) for (name, text), vector in pairs})
        return self.search(
            namespace,
            scope,
            query,
            limit,
            min_similarity,
            vector=arrays[0],
            space=embedder.name,
            started=started,
        )

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


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (`2025-01-02T03:04:05.000006Z`), as the edge shows times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(entity: Entity) -> str:
    """What an entity's embedding and words are made of."""
    return "\n".join((entity.name, entity.entity_type, *entity.observations))
