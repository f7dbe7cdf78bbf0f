"""A persona, folded from its stream ``persona_stream(namespace, name)``.

The registry decides on it; the edge's projection shows it. One fold, so the two never
disagree.
"""

from datetime import datetime

import msgspec

from parley.aggregates.agent import CorruptStreamError
from parley.contracts.envelope import Event
from parley.contracts.personas import PersonaCreated, PersonaSpec

__all__ = ["Persona", "evolve"]


class Persona(msgspec.Struct, frozen=True, kw_only=True):
    """A persona as folded from its stream."""

    namespace: str
    """Tenant the persona lives in."""
    spec: PersonaSpec
    """The definition."""
    version: int
    """Stream version of the last folded event."""
    created_at: datetime
    """Time of the last ``persona.created``."""
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
        if state is not None and not state.deleted:
            raise CorruptStreamError(f"{event.stream}: persona.created at version {event.version}")
        created = msgspec.convert(event.data, PersonaCreated)
        return Persona(
            namespace=event.namespace,
            spec=created.spec,
            version=event.version,
            created_at=event.time,
        )
    if state is None:
        if event.type == "persona.deleted":
            raise CorruptStreamError(f"{event.stream}: persona.deleted before persona.created")
        return None
    if event.type == "persona.deleted":
        return msgspec.structs.replace(state, deleted=True, version=event.version)
    return msgspec.structs.replace(state, version=event.version)
