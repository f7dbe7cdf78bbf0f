"""The memory handler: record an agent's entities and relations in its memory.

The agent's namespace and ``memory.scope`` pick the memory (:func:`agent_memory`); another
namespace's agent does not exist here. The decider is :func:`parley.aggregates.memory.decide`.
"""

from typing import Never

import msgspec

from parley.aggregates import memory
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.memory import Memory
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.memory import MemoryReply
from parley.contracts.memory import Remember
from parley.contracts.memory import agent_memory
from parley.contracts.memory import memory_stream
from parley.registry.handlers import Registry
from parley.registry.handlers import execute

__all__ = ["remember"]


async def remember(registry: Registry, command: Remember) -> MemoryReply:
    """Record ``command.write`` in the agent's memory; what it had already is not repeated."""
    agent = await registry.live_agent(command.agent_id)
    if agent is None or agent.namespace != command.namespace:
        raise ParleyError(
            ErrorCode.AGENT_NOT_FOUND,
            f"no agent {command.agent_id[:64]} in namespace {command.namespace}",
            {"agent_id": command.agent_id[:64]},
        )
    scope = agent_memory(agent.spec, command.agent_id)
    command = msgspec.structs.replace(command, scope=scope)
    decided: list[Decision[Never]] = []

    def decide(state: Memory | None, remembered: Remember, ctx: Context) -> Decision[Never]:
        decided[:] = [memory.decide(state, remembered, ctx)]
        return decided[0]

    outcome = await execute(
        registry.memories,
        memory_stream(command.namespace, scope),
        decide,
        command,
        subject=scope,
        origin=command,
    )
    kinds = [kind for kind, _ in decided[0].events] if decided else []
    entities = outcome.state.entities if outcome.state is not None else {}
    return MemoryReply(
        ok=True,
        version=outcome.version,
        position=outcome.position,
        entity_ids=[entities[e.name].id for e in command.write.entities],
        entities_created=kinds.count("memory.entity_created"),
        relations_created=kinds.count("memory.relation_created"),
    )
