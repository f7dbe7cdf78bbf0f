"""The exported JSON Schemas and AsyncAPI document match the code."""

from parley.contracts.export import SCHEMA_DIR
from parley.contracts.export import dumps
from parley.contracts.export import render


def test_checked_in_schemas_are_up_to_date_with_the_contracts() -> None:
    stale = [
        rel
        for rel, doc in render().items()
        if not (SCHEMA_DIR / rel).exists() or (SCHEMA_DIR / rel).read_text() != dumps(doc)
    ]
    assert not stale, f"stale schemas {stale}: run `just schemas` and commit the result"


def test_no_schema_file_is_left_over_from_a_removed_contract() -> None:
    expected = set(render())
    extra = [
        str(p.relative_to(SCHEMA_DIR))
        for p in SCHEMA_DIR.rglob("*.json")
        if str(p.relative_to(SCHEMA_DIR)) not in expected
    ]
    assert not extra, f"schemas for removed contracts {extra}: run `just schemas`"


def test_every_registry_event_type_has_an_exported_schema() -> None:
    from parley.contracts.registry import EVENT_TYPES

    assert {f"events/{t}.json" for t in EVENT_TYPES} <= set(render())
