"""Personas: given events, when a command, then events or a refusal; built-ins; the fold."""

from functools import reduce

import msgspec
import pytest
from _builders import NOW
from _builders import NS
from _builders import folded_by_registry
from _builders import recorded_by_registry
from _builders import refusal

from parley.aggregates.agent import CorruptStreamError
from parley.aggregates.decision import Context
from parley.aggregates.persona import Persona
from parley.aggregates.persona import PersonaCommand
from parley.aggregates.persona import decide
from parley.aggregates.persona import evolve
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.personas import EVENT_TYPES
from parley.contracts.personas import CreatePersona
from parley.contracts.personas import DeletePersona
from parley.contracts.personas import PersonaCreated
from parley.contracts.personas import PersonaDeleted
from parley.contracts.personas import PersonaSpec
from parley.contracts.personas import load_builtin_personas
from parley.contracts.personas import persona_stream


def spec(name: str = "pirate", **fields: object) -> PersonaSpec:
    return PersonaSpec(name=name, content=fields.pop("content", "Talk like a pirate."), **fields)  # type: ignore[arg-type]


def create(name: str = "pirate", **fields: object) -> CreatePersona:
    return CreatePersona(namespace=NS, spec=spec(name, **fields))


def delete(name: str = "pirate", expected_version: int | None = None) -> DeletePersona:
    return DeletePersona(namespace=NS, name=name, expected_version=expected_version)


def run(state: Persona | None, command: PersonaCommand) -> Persona | None:
    """Decide, then fold the decided events as the store would record them."""
    return folded_by_registry(
        evolve,
        state,
        decide(state, command, Context(NOW)).events,
        stream=persona_stream(NS, "pirate"),
        subject=command.spec.name if isinstance(command, CreatePersona) else command.name,
    )


def given(*commands: PersonaCommand) -> Persona | None:
    return reduce(run, commands, None)


def refused(command: PersonaCommand, state: Persona | None) -> ParleyError:
    return refusal(decide, state, command, Context(NOW))


def test_creating_a_new_persona_emits_persona_created_with_its_spec() -> None:
    assert decide(None, create(), Context(NOW)).events == [
        ("persona.created", PersonaCreated(name="pirate", spec=spec()))
    ]
    state = given(create(tags=["fun"]))
    assert state is not None and state.namespace == NS and state.version == 1
    assert state.spec.tags == ["fun"] and not state.deleted


def test_creating_over_a_live_persona_is_refused_as_existing() -> None:
    error = refused(create(), given(create()))
    assert error.code is ErrorCode.PERSONA_EXISTS and error.details == {"name": "pirate"}


@pytest.mark.parametrize("name", sorted(load_builtin_personas()))
def test_a_built_in_name_cannot_be_created(name: str) -> None:
    error = refused(create(name), None)
    assert error.code is ErrorCode.PERSONA_EXISTS and "built-in" in error.message


def test_deleting_a_live_persona_emits_persona_deleted() -> None:
    state = given(create())
    assert decide(state, delete(), Context(NOW)).events == [
        ("persona.deleted", PersonaDeleted(name="pirate"))
    ]
    after = run(state, delete())
    assert after is not None and after.deleted and after.version == 2


@pytest.mark.parametrize(
    "history", [(), (create(), delete())], ids=["never created", "already deleted"]
)
def test_deleting_a_missing_persona_is_not_found(history: tuple[PersonaCommand, ...]) -> None:
    assert refused(delete(), given(*history)).code is ErrorCode.PERSONA_NOT_FOUND


@pytest.mark.parametrize("name", sorted(load_builtin_personas()))
def test_a_built_in_persona_cannot_be_deleted(name: str) -> None:
    error = refused(delete(name), None)
    assert error.code is ErrorCode.PERSONA_READ_ONLY and "built-in" in error.message


def test_a_stale_expected_version_on_delete_is_a_concurrency_conflict() -> None:
    error = refused(delete(expected_version=7), given(create()))
    assert error.code is ErrorCode.CONCURRENCY_CONFLICT
    assert error.details == {"expected": 7, "actual": 1}
    assert decide(given(create()), delete(expected_version=1), Context(NOW)).events


def test_a_deleted_name_can_be_created_again_on_the_same_stream() -> None:
    state = given(create(content="old"), delete(), create(content="new"))
    assert state is not None and not state.deleted
    assert state.spec.content == "new" and state.version == 3


def test_every_event_decide_emits_is_a_known_type_that_evolve_accepts() -> None:
    state = None
    for command in (create(), delete(), create()):
        for event_type, payload in decide(state, command, Context(NOW)).events:
            assert type(payload) is EVENT_TYPES[event_type]
        state = run(state, command)


def _event(event_type: str, data: dict[str, object], version: int = 1) -> Event:
    return recorded_by_registry(
        event_type, data, stream=persona_stream(NS, "pirate"), subject="pirate", version=version
    )


def test_the_fold_refuses_a_delete_before_a_create_and_a_second_create() -> None:
    with pytest.raises(CorruptStreamError):
        evolve(None, _event("persona.deleted", {"name": "pirate"}))
    with pytest.raises(CorruptStreamError):
        evolve(given(create()), _event("persona.created", msgspec.to_builtins(
            PersonaCreated(name="pirate", spec=spec())), version=2))  # fmt: skip


def test_an_unknown_event_type_only_advances_the_version() -> None:
    state = given(create())
    after = evolve(state, _event("persona.renamed", {}, version=2))
    assert after is not None and after.version == 2 and after.spec == spec()
    assert evolve(None, _event("persona.renamed", {})) is None


def test_the_stream_is_per_namespace_and_name_and_a_valid_stream_name() -> None:
    import re

    pattern = re.compile(r"^[a-z][a-z0-9_]{0,31}-[A-Za-z0-9_-]{1,160}$")
    streams = {persona_stream(ns, n) for ns in ("a", "a-b") for n in ("x", "b-x", "y")}
    assert len(streams) == 6 and all(pattern.match(s) for s in streams)
    assert persona_stream("a" * 63, "z" * 64).startswith("persona-")


def test_built_in_personas_load_with_content_and_description() -> None:
    builtins = load_builtin_personas()
    assert {"helpful-assistant", "code-reviewer", "concise-analyst"} <= set(builtins)
    for name, persona in builtins.items():
        assert persona.name == name and persona.description and persona.content.strip()
        assert "+++" not in persona.content


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "content": "x"},
        {"name": "Has Spaces", "content": "x"},
        {"name": "x" * 65, "content": "x"},
        {"name": "ok", "content": ""},
        {"name": "ok", "content": "x" * 100_001},
        {"name": "ok"},
        {"name": "ok", "content": "x", "extra": 1},
    ],
    ids=["empty name", "not a slug", "long name", "empty content", "long content",
         "no content", "unknown field"],
)  # fmt: skip
def test_the_spec_schema_refuses_bad_personas(body: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(body, PersonaSpec)
