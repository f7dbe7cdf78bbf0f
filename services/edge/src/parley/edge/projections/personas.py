"""The personas projection: built-in personas plus every live created one, per namespace."""

from parley.aggregates.persona import Persona
from parley.aggregates.persona import evolve
from parley.contracts.envelope import Event
from parley.contracts.personas import PersonaSpec
from parley.contracts.personas import PersonaView
from parley.contracts.personas import load_builtin_personas
from parley.edge.projections._base import LiveProjection
from parley.edge.views import iso
from parley.eventstore import EventStore

__all__ = ["PersonasProjection", "persona_view"]


def persona_view(spec: PersonaSpec, created: Persona | None = None) -> PersonaView:
    """A persona as the API shows it: built-in, or ``created`` in a namespace."""
    view = PersonaView(
        name=spec.name,
        description=spec.description,
        content=spec.content,
        tags=list(spec.tags),
        builtin=created is None,
    )
    if created is not None:
        view.namespace, view.version = created.namespace, created.version
        view.created_at = iso(created.created_at)
    return view


class PersonasProjection(LiveProjection[Persona, PersonaView]):
    """Personas by namespace and name; built-ins are in every namespace."""

    prefix = "persona-"
    name = "personas-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._builtins = {name: persona_view(s) for name, s in load_builtin_personas().items()}

    def get(self, namespace: str, name: str) -> PersonaView | None:
        """The persona ``name`` visible in ``namespace``, if any."""
        return self._builtins.get(name) or self._get(namespace, name)

    def personas(self, namespace: str) -> list[PersonaView]:
        """Every persona visible in ``namespace``: built-ins first, then by name."""
        created = sorted(self._entries(namespace), key=lambda v: v.name)
        return [*self._builtins.values(), *created]

    def _evolve(self, state: Persona | None, event: Event) -> Persona | None:
        return evolve(state, event)

    def _entry(self, persona: Persona) -> tuple[str, PersonaView | None]:
        live = None if persona.deleted else persona_view(persona.spec, persona)
        return persona.spec.name, live
