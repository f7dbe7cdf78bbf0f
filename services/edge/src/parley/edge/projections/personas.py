"""The personas projection: built-in personas plus every live created one, per namespace."""

from parley.aggregates.persona import Persona, evolve
from parley.contracts.envelope import Event
from parley.contracts.personas import PersonaSpec, PersonaView, load_builtin_personas
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import iso
from parley.eventstore import EventStore

__all__ = ["PersonasProjection", "builtin_view"]


def builtin_view(spec: PersonaSpec) -> PersonaView:
    """A built-in persona as the API shows it."""
    return PersonaView(
        name=spec.name,
        description=spec.description,
        content=spec.content,
        tags=list(spec.tags),
        builtin=True,
    )


class PersonasProjection(FoldingProjection):
    """Personas by namespace and name; built-ins are in every namespace."""

    prefix = "persona-"
    name = "personas-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._builtins = {name: builtin_view(s) for name, s in load_builtin_personas().items()}
        self._personas: dict[str, Persona] = {}
        self._by_ns: dict[str, dict[str, PersonaView]] = {}

    def get(self, namespace: str, name: str) -> PersonaView | None:
        """The persona ``name`` visible in ``namespace``, if any."""
        return self._builtins.get(name) or self._by_ns.get(namespace, {}).get(name)

    def personas(self, namespace: str) -> list[PersonaView]:
        """Every persona visible in ``namespace``: built-ins first, then by name."""
        created = sorted(self._by_ns.get(namespace, {}).values(), key=lambda v: v.name)
        return [*self._builtins.values(), *created]

    def _fold(self, event: Event) -> None:
        persona = evolve(self._personas.get(event.stream), event)
        if persona is None:
            return
        self._personas[event.stream] = persona
        views = self._by_ns.setdefault(persona.namespace, {})
        if persona.deleted:
            views.pop(persona.spec.name, None)
        else:
            views[persona.spec.name] = _view(persona)


def _view(persona: Persona) -> PersonaView:
    spec = persona.spec
    return PersonaView(
        name=spec.name,
        description=spec.description,
        content=spec.content,
        tags=list(spec.tags),
        builtin=False,
        namespace=persona.namespace,
        version=persona.version,
        created_at=iso(persona.created_at),
    )
