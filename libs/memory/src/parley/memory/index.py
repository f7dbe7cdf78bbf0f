"""The search index of one memory: vectors in usearch HNSW indexes, words in an inverted
index, all rebuilt from events whenever a process starts.

Each embedder has its own vector *space* (one usearch index, its own dimensions). The local
space (:data:`EMBEDDER`, :func:`embed`) is filled as entities are put; a provider's space is
filled on demand (:meth:`MemoryIndex.missing`, :meth:`MemoryIndex.fill`) by whoever holds
that provider, since its vectors cost a call.

:func:`embed` is a deterministic local embedder that needs no download: words and their
character trigrams hashed (BLAKE2b) into signed buckets of a fixed-size vector, normalised to
unit length, so texts that share words and word pieces are close.
"""

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from usearch.index import Index

__all__ = ["DIMENSIONS", "EMBEDDER", "Hit", "MemoryIndex", "Vector", "embed", "words"]

DIMENSIONS = 256
"""Length of every local embedding."""
EMBEDDER = f"parley-hashed-ngrams-{DIMENSIONS}"
"""The local embedder's name (its space's name), as memory stats report it."""
CANDIDATES = 512
"""Most entities a search scores: the vector neighbours, then keyword matches, rarest word
first."""
KEYWORD_WEIGHT = 0.3
"""Share of the keyword score in a hit's rank (the rest is the vector similarity)."""

Vector = npt.NDArray[np.float32]
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def words(text: str) -> list[str]:
    """Lowercase words of ``text``; camelCase and digits split (``Q3Sales`` → q, 3, sales)."""
    return [w.lower() for w in _WORD.findall(text)]


def _features(text: str) -> Iterable[tuple[str, float]]:
    for word in words(text):
        yield f"w:{word}", 1.0
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            yield f"g:{padded[i : i + 3]}", 0.5


def embed(text: str) -> Vector:
    """The unit-length local embedding of ``text`` (all zeros for a text without words)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for feature, weight in _features(text):
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest())
        sign = 1.0 if digest >> 63 else -1.0
        vector[digest % DIMENSIONS] += sign * weight
    return unit(vector)


def unit(vector: Vector) -> Vector:
    """``vector`` scaled to unit length (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class Hit:
    """One entity a search found, with its scores."""

    __slots__ = ("keyword", "name", "score", "similarity")

    def __init__(self, name: str, similarity: float, keyword: float) -> None:
        self.name, self.similarity, self.keyword = name, similarity, keyword
        self.score = (1 - KEYWORD_WEIGHT) * similarity + KEYWORD_WEIGHT * keyword


class _Space:
    """One embedder's vectors of the memory's entities, by entity key."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.index = Index(ndim=dimensions, metric="cos", dtype="f32")
        self.vectors: dict[int, Vector] = {}

    def put(self, key: int, vector: Vector) -> None:
        self.drop(key)
        self.vectors[key] = vector
        self.index.add(key, vector)

    def drop(self, key: int) -> None:
        if self.vectors.pop(key, None) is not None:
            self.index.remove(key)

    def nearest(self, vector: Vector, count: int) -> list[int]:
        if not self.vectors:
            return []
        matches = self.index.search(vector, min(count, len(self.vectors)))
        return [int(k) for k in matches.keys]

    def similarity(self, vector: Vector, key: int) -> float:
        found = self.vectors.get(key)
        return 0.0 if found is None else max(0.0, float(np.dot(vector, found)))


class MemoryIndex:
    """Vectors (one space per embedder) and words of one memory's entities, by name."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._texts: dict[str, str] = {}
        self._words: dict[str, set[str]] = {}
        self._postings: defaultdict[str, set[str]] = defaultdict(set)
        self._spaces: dict[str, _Space] = {EMBEDDER: _Space(DIMENSIONS)}

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, name: str, text: str) -> None:
        """Index (or index again) the entity ``name`` described by ``text``: its words and
        local vector now; a provider space's vector of its old text is dropped."""
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = len(self._keys) + 1
            self._names[key] = name
        else:
            for word in self._words[name]:
                self._postings[word].discard(name)
        self._texts[name] = text
        for space in self._spaces.values():
            space.drop(key)
        self._spaces[EMBEDDER].put(key, embed(text))
        self._words[name] = set(words(text))
        for word in self._words[name]:
            self._postings[word].add(name)

    def missing(self, space: str) -> dict[str, str]:
        """Entities (name → text) the space ``space`` has no vector of yet."""
        held = self._spaces.get(space)
        have = held.vectors if held is not None else {}
        return {name: self._texts[name] for name, key in self._keys.items() if key not in have}

    def fill(self, space: str, vectors: Mapping[str, tuple[str, Vector]]) -> None:
        """Add vectors to ``space`` (made on first use): name → (the text embedded, its unit
        vector). A vector of a text the entity no longer has is ignored."""
        for name, (text, vector) in vectors.items():
            if self._texts.get(name) != text:
                continue
            held = self._spaces.get(space)
            if held is None or held.dimensions != len(vector):
                held = self._spaces[space] = _Space(len(vector))
            held.put(self._keys[name], vector)

    def search(self, query: str, vector: Vector | None = None, space: str = EMBEDDER) -> list[Hit]:
        """Entities near ``query`` (its vector neighbours in ``space``, ``vector`` being the
        query's embedding there, local by default, and the entities with its rarest words),
        best first. A word's weight in the keyword score is its IDF, so a word every entity
        has counts for little."""
        if not self._keys:
            return []
        held = self._spaces.get(space) or self._spaces[EMBEDDER]
        if vector is None or held.dimensions != len(vector):
            held, vector = self._spaces[EMBEDDER], embed(query)
        asked = sorted(set(words(query)), key=self._frequency)
        found = {self._names[k] for k in held.nearest(vector, CANDIDATES // 4)}
        for word in asked:
            if len(found) >= CANDIDATES:
                break
            found |= self._postings.get(word, set())
        weights = {
            word: math.log(1 + len(self._keys) / (1 + self._frequency(word))) for word in asked
        }
        whole = sum(weights.values())
        hits = [
            Hit(
                name,
                held.similarity(vector, self._keys[name]),
                sum(weights[w] for w in asked if w in self._words[name]) / whole if whole else 0.0,
            )
            for name in found
        ]
        return sorted(hits, key=lambda h: (-h.score, h.name))

    def _frequency(self, word: str) -> int:
        return len(self._postings.get(word, ()))

    def vector_bytes(self) -> int:
        """Bytes the entities' vectors take, over every space."""
        return sum(len(s.vectors) * s.dimensions * 4 for s in self._spaces.values())
