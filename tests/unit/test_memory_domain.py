"""Memory: given a memory, when a write, then the events; the fold; the local embedder."""

import itertools

import msgspec
import numpy as np
from _builders import NOW
from _builders import NS
from _builders import folded_by_registry
from _builders import refusal

from parley.aggregates.decision import Context
from parley.aggregates.memory import Memory
from parley.aggregates.memory import decide
from parley.aggregates.memory import evolve
from parley.contracts.errors import ErrorCode
from parley.contracts.memory import MemoryEntity
from parley.contracts.memory import MemoryWrite
from parley.contracts.memory import Relation
from parley.contracts.memory import Remember
from parley.contracts.memory import memory_stream
from parley.memory.index import DIMENSIONS
from parley.memory.index import MemoryIndex
from parley.memory.index import embed
from parley.memory.index import words

SCOPE = "agent:a1"


def remember(*entities: MemoryEntity, relations: tuple[Relation, ...] = ()) -> Remember:
    write = MemoryWrite(entities=list(entities), relations=list(relations))
    return Remember(namespace=NS, agent_id="a1", write=write, scope=SCOPE)


def entity(name: str, *observations: str, kind: str = "fact") -> MemoryEntity:
    return MemoryEntity(name=name, entity_type=kind, observations=list(observations))


def run(state: Memory | None, command: Remember) -> tuple[list[str], Memory | None]:
    """Decide (ids from a counter), then fold the events as the store records them."""
    counter = itertools.count(1)
    decided = decide(state, command, Context(NOW, mint=lambda: f"id{next(counter)}")).events
    folded = folded_by_registry(
        evolve, state, decided, stream=memory_stream(NS, SCOPE), subject=SCOPE
    )
    return [kind for kind, _ in decided], folded


def test_new_entities_are_created_with_their_observations_once_each() -> None:
    kinds, state = run(None, remember(entity("Alice", "likes tea", "likes tea"), entity("Bob")))
    assert kinds == ["memory.entity_created"] * 2
    assert state is not None and state.namespace == NS and state.scope == SCOPE
    assert state.entities["Alice"].observations == ("likes tea",)
    assert state.entities["Alice"].id == "id1" and state.version == 2


def test_a_known_name_gets_only_its_new_observations_and_keeps_its_id() -> None:
    _, state = run(None, remember(entity("Alice", "likes tea")))
    kinds, state = run(state, remember(entity("Alice", "likes tea", "runs daily")))
    assert kinds == ["memory.observations_added"]
    assert state is not None and state.entities["Alice"].id == "id1"
    assert state.entities["Alice"].observations == ("likes tea", "runs daily")
    assert run(state, remember(entity("Alice", "likes tea")))[0] == []


def test_relations_link_known_or_written_entities_and_are_recorded_once() -> None:
    link = Relation(from_entity="Alice", to_entity="Acme", relation_type="works_at")
    _, state = run(None, remember(entity("Alice")))
    kinds, state = run(state, remember(entity("Acme"), relations=(link, link)))
    assert kinds == ["memory.entity_created", "memory.relation_created"]
    assert state is not None and state.relations == {("Alice", "works_at", "Acme")}
    assert run(state, remember(relations=(link,)))[0] == []


def test_a_relation_to_an_unknown_entity_is_refused_naming_its_field() -> None:
    link = Relation(from_entity="Alice", to_entity="Nobody", relation_type="knows")
    error = refusal(decide, None, remember(entity("Alice"), relations=(link,)), Context(NOW))
    assert error.code == ErrorCode.VALIDATION_ERROR
    assert msgspec.to_builtins(error.details)["errors"][0]["field"] == "relations[0].to_entity"


def test_the_embedder_is_deterministic_unit_length_and_splits_camel_case() -> None:
    assert words("Q3SalesInsight, HTTPServer") == ["q", "3", "sales", "insight", "http", "server"]
    vector = embed("mobile sales grew")
    assert vector.shape == (DIMENSIONS,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert np.array_equal(vector, embed("mobile sales grew"))
    assert not embed("!!!").any()


def test_the_index_ranks_the_nearest_entity_first_and_reindexes_a_changed_one() -> None:
    index = MemoryIndex()
    index.put("Sales", "Sales\nfact\nmobile sales grew in Q3")
    index.put("Coffee", "Coffee\nfact\nthe coffee machine is upstairs")
    assert [h.name for h in index.search("coffee machine")][0] == "Coffee"
    index.put("Coffee", "Coffee\nfact\nthe espresso maker moved")
    assert all(hit.keyword == 0 for hit in index.search("machine"))
    assert index.search("espresso")[0].name == "Coffee" and len(index) == 2


def test_a_provider_space_is_filled_on_demand_and_forgets_a_changed_entity() -> None:
    index = MemoryIndex()
    index.put("Sales", "mobile sales grew")
    index.put("Coffee", "the coffee machine")
    assert index.missing("p:m") == {"Sales": "mobile sales grew", "Coffee": "the coffee machine"}
    axis = {"Sales": np.array([1, 0], np.float32), "Coffee": np.array([0, 1], np.float32)}
    index.fill("p:m", {name: (text, axis[name]) for name, text in index.missing("p:m").items()})
    assert index.missing("p:m") == {}
    # by the provider's vectors (which know nothing of words), then by the local embedder's
    near_sales = index.search("zzz", np.array([1, 0], np.float32), "p:m")
    assert near_sales[0].name == "Sales" and near_sales[0].similarity == 1.0
    assert index.search("zzz", np.array([1, 0], np.float32))[0].similarity == 0.0
    index.put("Sales", "mobile sales fell")
    assert index.missing("p:m") == {"Sales": "mobile sales fell"}
    # a vector of a text the entity no longer has is not kept
    index.fill("p:m", {"Sales": ("mobile sales grew", axis["Sales"])})
    assert index.missing("p:m") == {"Sales": "mobile sales fell"}
