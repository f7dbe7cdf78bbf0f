"""Personas: the pure decider, the command handlers, and the check agents use.

``decide(command, state)`` returns ``(type, payload)`` pairs or raises :class:`DomainError`;
the fold is :func:`parley.aggregates.persona.evolve`, shared with the edge's projection.
"""

from parley.aggregates.persona import Persona, evolve
from parley.contracts.envelope import NewEvent, utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.personas import (
    CreatePersona,
    DeletePersona,
    PersonaCreated,
    PersonaDeleted,
    load_builtin_personas,
    persona_stream,
)
from parley.contracts.registry import CommandReply
from parley.eventstore import EventStore
from parley.eventstore.kernel import execute, load
from parley.kit.telemetry import current_traceparent
from parley.registry._errors import DomainError
from parley.registry.domain import Decided, as_new_events

__all__ = [
    "check_persona",
    "create_persona",
    "decide",
    "delete_persona",
    "evolve",
    "persona_exists",
]

PersonaCommand = CreatePersona | DeletePersona


def decide(command: PersonaCommand, state: Persona | None) -> Decided:
    """Decide the events a persona command causes.

    Args:
        command: A create or a delete.
        state: The persona folded from its stream, or None if the stream is empty.

    Raises:
        DomainError: ``PERSONA_EXISTS`` (a live or built-in persona has the name),
            ``PERSONA_READ_ONLY`` (deleting a built-in), ``PERSONA_NOT_FOUND`` or
            ``CONCURRENCY_CONFLICT``.
    """
    live = state is not None and not state.deleted
    if isinstance(command, CreatePersona):
        name = command.spec.name
        if name in load_builtin_personas():
            raise DomainError(
                ErrorCode.PERSONA_EXISTS,
                f"{name!r} is a built-in persona; choose another name",
                {"name": name, "builtin": True},
            )
        if live:
            raise DomainError(
                ErrorCode.PERSONA_EXISTS,
                f"a persona named {name!r} already exists in namespace {command.namespace};"
                " delete it first or choose another name",
                {"name": name},
            )
        return [("persona.created", PersonaCreated(name=name, spec=command.spec))]
    if isinstance(command, DeletePersona):
        if command.name in load_builtin_personas():
            raise DomainError(
                ErrorCode.PERSONA_READ_ONLY,
                f"{command.name!r} is a built-in persona and cannot be deleted",
                {"name": command.name, "builtin": True},
            )
        if not live or state is None:
            raise DomainError(
                ErrorCode.PERSONA_NOT_FOUND,
                f"no persona {command.name!r} in namespace {command.namespace}",
                {"name": command.name},
            )
        if command.expected_version is not None and command.expected_version != state.version:
            raise DomainError(
                ErrorCode.CONCURRENCY_CONFLICT,
                f"persona {command.name!r} is at version {state.version}, not"
                f" {command.expected_version}; read it again and retry",
                {"expected": command.expected_version, "actual": state.version},
            )
        return [("persona.deleted", PersonaDeleted(name=command.name, reason=command.reason))]
    raise TypeError(f"not a persona command: {type(command).__name__}")


async def create_persona(store: EventStore, command: CreatePersona) -> CommandReply:
    """Create a persona in the command's namespace."""
    return await _run(store, command, command.spec.name)


async def delete_persona(store: EventStore, command: DeletePersona) -> CommandReply:
    """Delete a created persona."""
    return await _run(store, command, command.name)


async def persona_exists(store: EventStore, namespace: str, name: str) -> bool:
    """Whether ``name`` is a built-in persona or a live one of ``namespace``."""
    if name in load_builtin_personas():
        return True
    state = (await load(store, persona_stream(namespace, name), evolve)).state
    return state is not None and not state.deleted


async def check_persona(store: EventStore, namespace: str, name: str | None) -> None:
    """Refuse an agent definition that names a persona that does not exist.

    Raises:
        DomainError: ``VALIDATION_ERROR`` with a ``persona`` field error.
    """
    if name is None or await persona_exists(store, namespace, name):
        return
    message = (
        f"no persona {name!r} in namespace {namespace}; use a built-in or a created one"
        " (see GET /api/v1/personas)"
    )
    raise DomainError(
        ErrorCode.VALIDATION_ERROR,
        f"persona: {message}",
        {"errors": [{"field": "persona", "code": "VALIDATION_ERROR", "message": message}]},
    )


async def _run(store: EventStore, command: PersonaCommand, name: str) -> CommandReply:
    traceparent = current_traceparent()

    def decider(state: Persona | None) -> list[NewEvent]:
        now = utcnow()
        return as_new_events(
            decide(command, state),
            subject=name,
            namespace=command.namespace,
            now=now,
            correlationid=command.request_id,
            traceparent=traceparent,
        )

    outcome = await execute(
        store,
        persona_stream(command.namespace, name),
        decider,
        evolve,
        expected_version=getattr(command, "expected_version", None),
    )
    return CommandReply(ok=True, version=outcome.version, position=outcome.position)
