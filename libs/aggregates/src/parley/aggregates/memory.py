"""A memory, folded from its stream ``memory_stream(namespace, scope)``, and its decider.

The registry decides with :func:`decide`; the edge's memory index folds with :func:`evolve`.
A second write of an entity's name adds only the observations it did not have; a relation
already recorded is not recorded again, so a retried write appends nothing new.
"""

from datetime import datetime
from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.fold import CorruptStreamError
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.memory import EntityCreated
from parley.contracts.memory import ObservationsAdded
from parley.contracts.memory import Relation
from parley.contracts.memory import RelationCreated
from parley.contracts.memory import Remember
from parley.contracts.memory import memory_stream

__all__ = ["CATEGORY", "FOLDS", "Entity", "Memory", "decide", "evolve", "relation_key"]

CATEGORY = memory_stream.category
"""The stream category this aggregate folds (``memory-<namespace>-<hash>``)."""
_PAYLOADS: dict[str, type[EntityCreated | ObservationsAdded | RelationCreated]] = {
    "memory.entity_created": EntityCreated,
    "memory.observations_added": ObservationsAdded,
    "memory.relation_created": RelationCreated,
}
FOLDS: frozenset[str] = frozenset(_PAYLOADS)
"""The event types :func:`evolve` folds."""

RelationKey = tuple[str, str, str]


def relation_key(relation: Relation) -> RelationKey:
    """A relation's identity: (from, type, to)."""
    return (relation.from_entity, relation.relation_type, relation.to_entity)


class Entity(msgspec.Struct, frozen=True, kw_only=True):
    """One entity of a memory."""

    id: str
    name: str
    entity_type: str
    observations: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


class Memory(msgspec.Struct, frozen=True, kw_only=True):
    """A memory as folded from its stream."""

    namespace: str
    scope: str
    version: int
    updated_at: datetime
    entities: dict[str, Entity] = {}
    """By name. Never changed in place: each fold makes a new dict."""
    relations: frozenset[RelationKey] = frozenset()


def evolve(state: Memory | None, event: Event) -> Memory | None:
    """Fold one recorded memory event; unknown types only advance ``version``.

    Raises:
        CorruptStreamError: On observations of an entity the memory does not have.
        msgspec.ValidationError: If ``event.data`` does not match its payload type.
    """
    if event.type not in FOLDS:
        return None if state is None else msgspec.structs.replace(state, version=event.version)
    payload = msgspec.convert(event.data, _PAYLOADS[event.type])
    if state is None:
        state = Memory(
            namespace=event.namespace, scope=payload.scope, version=0, updated_at=event.time
        )
    entities, relations = state.entities, state.relations
    if isinstance(payload, EntityCreated):
        entity = Entity(
            id=payload.entity_id,
            name=payload.name,
            entity_type=payload.entity_type,
            observations=tuple(payload.observations),
            created_at=event.time,
            updated_at=event.time,
        )
        entities = {**entities, entity.name: entity}
    elif isinstance(payload, ObservationsAdded):
        found = entities.get(payload.name)
        if found is None:
            raise CorruptStreamError.before(event, "memory.entity_created")
        grown = (*found.observations, *payload.observations)
        changed = msgspec.structs.replace(found, observations=grown, updated_at=event.time)
        entities = {**entities, found.name: changed}
    elif isinstance(payload, RelationCreated):
        relations = relations | {relation_key(payload.relation)}
    return msgspec.structs.replace(
        state,
        entities=entities,
        relations=relations,
        version=event.version,
        updated_at=event.time,
    )


def decide(state: Memory | None, command: Remember, ctx: Context) -> Decision[Never]:
    """Decide the events a write to the memory ``command.scope`` causes.

    Args:
        state: The memory folded from its stream, or None if it is empty.
        command: The write, its scope set by the registry.
        ctx: Mints the new entities' ids.

    Raises:
        ParleyError: ``VALIDATION_ERROR`` naming the field of a relation whose end is in
            neither the memory nor the write.
    """
    known = dict(state.entities) if state is not None else {}
    relations = set(state.relations) if state is not None else set()
    events: Decided = []
    scope, agent_id = command.scope or "", command.agent_id
    for entity in command.write.entities:
        found = known.get(entity.name)
        fresh = list(dict.fromkeys(entity.observations))
        if found is None:
            created = EntityCreated(
                scope=scope,
                agent_id=agent_id,
                entity_id=ctx.mint(),
                name=entity.name,
                entity_type=entity.kind,
                observations=fresh,
            )
            events.append(("memory.entity_created", created))
            known[entity.name] = Entity(
                id=created.entity_id,
                name=entity.name,
                entity_type=entity.kind,
                observations=tuple(fresh),
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            continue
        new = [o for o in fresh if o not in found.observations]
        if new:
            added = ObservationsAdded(
                scope=scope,
                agent_id=agent_id,
                entity_id=found.id,
                name=found.name,
                observations=new,
            )
            events.append(("memory.observations_added", added))
            grown = (*found.observations, *new)
            known[entity.name] = msgspec.structs.replace(found, observations=grown)
    for index, relation in enumerate(command.write.relations):
        for field in ("from_entity", "to_entity"):
            if getattr(relation, field) not in known:
                _unknown_end(index, field, getattr(relation, field))
        key = relation_key(relation)
        if key not in relations:
            relations.add(key)
            events.append(
                (
                    "memory.relation_created",
                    RelationCreated(scope=scope, agent_id=agent_id, relation=relation),
                )
            )
    return Decision(events)


def _unknown_end(index: int, field: str, name: str) -> Never:
    path = f"relations[{index}].{field}"
    message = f"no entity {name[:64]!r} in this memory or in `entities`"
    raise ParleyError(
        ErrorCode.VALIDATION_ERROR,
        f"{path}: {message}",
        {"errors": [{"field": path, "code": "VALIDATION_ERROR", "message": message}]},
    )
