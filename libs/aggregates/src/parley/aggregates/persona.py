"""A persona, folded from its stream ``persona_stream(namespace, name)``, and its decider.

The registry decides with :func:`decide`; the edge's projection shows what :func:`evolve`
folds. One fold, so the two never disagree.
"""

from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.decision import check_expected
from parley.aggregates.fold import CorruptStreamError
from parley.aggregates.fold import Folded
from parley.aggregates.fold import born
from parley.aggregates.fold import created
from parley.aggregates.fold import kinds
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

__all__ = ["CATEGORY", "FOLDS", "Persona", "PersonaCommand", "decide", "evolve"]

CATEGORY = persona_stream.category
"""The stream category this aggregate folds (``persona-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "persona")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

PersonaCommand = CreatePersona | DeletePersona


class Persona(Folded, frozen=True, kw_only=True):
    """A persona as folded from its stream."""

    spec: PersonaSpec
    """The definition."""
    deleted: bool = False
    """Deleted: hidden from views; a new create may reuse the stream."""


def evolve(state: Persona | None, event: Event) -> Persona | None:
    """Fold one recorded event into a persona.

    A create after a delete starts the persona afresh; unknown event types only advance
    ``version``.

    Raises:
        CorruptStreamError: On a create over a live persona, or a delete before any create.
        msgspec.ValidationError: If ``event.data`` does not match its payload type.
    """
    if event.type == "persona.created":
        create = created(event, PersonaCreated, exists=state is not None and not state.deleted)
        return Persona(spec=create.spec, **born(event))
    if state is None:
        if event.type == "persona.deleted":
            raise CorruptStreamError.before(event, "persona.created")
        return None
    if event.type == "persona.deleted":
        return msgspec.structs.replace(state, deleted=True, version=event.version)
    return msgspec.structs.replace(state, version=event.version)


def decide(state: Persona | None, command: PersonaCommand, ctx: Context) -> Decision[Never]:
    """Decide the events a persona command causes.

    Args:
        state: The persona folded from its stream, or None if the stream is empty.
        command: A create or a delete.
        ctx: Decision time and ids (the rules depend on neither).

    Raises:
        ParleyError: ``PERSONA_EXISTS`` (a live or built-in persona has the name),
            ``PERSONA_READ_ONLY`` (deleting a built-in), ``PERSONA_NOT_FOUND`` or
            ``CONCURRENCY_CONFLICT``.
    """
    del ctx
    live = state is not None and not state.deleted
    if isinstance(command, CreatePersona):
        name = command.spec.name
        if name in load_builtin_personas():
            raise ParleyError(
                ErrorCode.PERSONA_EXISTS,
                f"{name!r} is a built-in persona; choose another name",
                {"name": name, "builtin": True},
            )
        if live:
            raise ParleyError(
                ErrorCode.PERSONA_EXISTS,
                f"a persona named {name!r} already exists in namespace {command.namespace};"
                " delete it first or choose another name",
                {"name": name},
            )
        return Decision([("persona.created", PersonaCreated(name=name, spec=command.spec))])
    if isinstance(command, DeletePersona):
        if command.name in load_builtin_personas():
            raise ParleyError(
                ErrorCode.PERSONA_READ_ONLY,
                f"{command.name!r} is a built-in persona and cannot be deleted",
                {"name": command.name, "builtin": True},
            )
        if not live or state is None:
            raise ParleyError(
                ErrorCode.PERSONA_NOT_FOUND,
                f"no persona {command.name!r} in namespace {command.namespace}",
                {"name": command.name},
            )
        check_expected(f"persona {command.name!r}", command.expected_version, state.version)
        deleted = PersonaDeleted(name=command.name, reason=command.reason)
        return Decision([("persona.deleted", deleted)])
    raise TypeError(f"not a persona command: {type(command).__name__}")
