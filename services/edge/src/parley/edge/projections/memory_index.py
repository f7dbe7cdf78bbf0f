"""The search index of one memory: vectors in a usearch HNSW index, words in an inverted
index, both rebuilt from events whenever the edge starts.

Embeddings come from :func:`embed`, a deterministic local embedder that needs no download:
words and their character trigrams hashed (BLAKE2b) into signed buckets of a fixed-size
vector, normalised to unit length, so texts that share words and word pieces are close.
"""

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from usearch.index import Index

__all__ = ["DIMENSIONS", "EMBEDDER", "Hit", "MemoryIndex", "embed", "words"]

DIMENSIONS = 256
"""Length of every embedding."""
EMBEDDER = f"parley-hashed-ngrams-{DIMENSIONS}"
"""The embedder's name, as memory stats report it."""
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
    """The unit-length embedding of ``text`` (all zeros for a text without words)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for feature, weight in _features(text):
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest())
        sign = 1.0 if digest >> 63 else -1.0
        vector[digest % DIMENSIONS] += sign * weight
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class Hit:
    """One entity a search found, with its scores."""

    __slots__ = ("keyword", "name", "score", "similarity")

    def __init__(self, name: str, similarity: float, keyword: float) -> None:
        self.name, self.similarity, self.keyword = name, similarity, keyword
        self.score = (1 - KEYWORD_WEIGHT) * similarity + KEYWORD_WEIGHT * keyword


class MemoryIndex:
    """Vectors and words of one memory's entities, by entity name."""

    def __init__(self) -> None:
        self._vectors = Index(ndim=DIMENSIONS, metric="cos", dtype="f32")
        self._keys: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._embedded: dict[str, Vector] = {}
        self._words: dict[str, set[str]] = {}
        self._postings: defaultdict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, name: str, text: str) -> None:
        """Index (or index again) the entity ``name`` described by ``text``."""
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = len(self._keys) + 1
            self._names[key] = name
        else:
            self._vectors.remove(key)
            for word in self._words[name]:
                self._postings[word].discard(name)
        vector = self._embedded[name] = embed(text)
        self._vectors.add(key, vector)
        self._words[name] = set(words(text))
        for word in self._words[name]:
            self._postings[word].add(name)

    def search(self, query: str) -> list[Hit]:
        """Entities near ``query`` (its vector neighbours and the entities with its rarest
        words), best first. A word's weight in the keyword score is its IDF, so a word
        every entity has counts for little."""
        if not self._keys:
            return []
        vector, asked = embed(query), sorted(set(words(query)), key=self._frequency)
        found = {self._names[int(k)] for k in self._nearest(vector)}
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
                max(0.0, float(np.dot(vector, self._embedded[name]))),
                sum(weights[w] for w in asked if w in self._words[name]) / whole if whole else 0.0,
            )
            for name in found
        ]
        return sorted(hits, key=lambda h: (-h.score, h.name))

    def _frequency(self, word: str) -> int:
        return len(self._postings.get(word, ()))

    def vector_bytes(self) -> int:
        """Bytes the entities' vectors take."""
        return len(self._keys) * DIMENSIONS * 4

    def _nearest(self, vector: Vector) -> list[int]:
        count = min(len(self._keys), CANDIDATES // 4)
        matches = self._vectors.search(vector, count)
        return [int(k) for k in matches.keys]
