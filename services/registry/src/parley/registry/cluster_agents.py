"""What a cluster command does to its agents, through the registry's own agent handlers.

Many agents at once (:func:`each`, :data:`~parley.registry.domain.PARALLEL` at a time),
creation (:func:`make`), lifecycle actions (:func:`act`), removal (:func:`remove`) and the
compensation of a failed create (:func:`discard`), and the check of every agent of a
manifest before a create (:func:`check_agents`).
"""

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from typing import TypeVar

from parley.aggregates.agent import Agent
from parley.aggregates.agent_spec import validate_spec
from parley.aggregates.cluster import field_of
from parley.contracts.clusters import ClusterCommand
from parley.contracts.clusters import CreateCluster
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.registry.domain import PARALLEL
from parley.registry.domain import orphan_of
from parley.registry.domain import refusal
from parley.registry.handlers import Registry

__all__ = ["act", "check_agents", "discard", "each", "make", "remove"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def each(work: Callable[[T], Awaitable[int]], items: Iterable[T]) -> list[int]:
    """Run ``work`` on every item, :data:`PARALLEL` at a time; after a failure the items not
    yet begun are skipped, and the first error is raised once every begun item has finished
    (so a compensation sees all that was done)."""
    gate = asyncio.Semaphore(PARALLEL)
    failed = False

    async def one(item: T) -> int:
        nonlocal failed
        async with gate:
            if failed:
                return 0
            try:
                return await work(item)
            except BaseException:
                failed = True
                raise

    results = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, int)]


async def make(
    registry: Registry, command: ClusterCommand, spec: AgentSpec, agent_id: str, made: list[str]
) -> int:
    """Create one agent of the cluster as ``agent_id``; ``made`` gets the id once it exists
    (for the compensation of a failure). The position of its event."""
    reply = await registry.create_agent(
        CreateAgent(
            namespace=command.namespace,
            request_id=command.request_id,
            spec=spec,
            agent_id=agent_id,
        )
    )
    made.append(agent_id)
    return reply.position


async def act(
    registry: Registry, command: ClusterCommand, agent_id: str, action: AgentAction | str
) -> int:
    """Drive one agent of the cluster; the position of its event."""
    name = command.manifest.metadata.name if isinstance(command, CreateCluster) else command.name
    action = AgentAction(action)
    reply = await registry.agent_action(
        AgentActionCommand(
            namespace=command.namespace,
            request_id=command.request_id,
            agent_id=agent_id,
            action=action,
            reason=f"cluster {name}: {action.value}",
        )
    )
    return reply.position


async def remove(registry: Registry, namespace: str, agent_id: str, request_id: str | None) -> int:
    """Stop (if it runs) and delete an agent; an agent already gone is skipped."""
    found = await registry.live_agent(agent_id)
    if found is None:
        return 0
    position = 0
    try:
        if found.state != AgentState.STOPPED:
            reply = await registry.agent_action(
                AgentActionCommand(
                    namespace=namespace,
                    request_id=request_id,
                    agent_id=agent_id,
                    action=AgentAction.STOP,
                    force=found.state == AgentState.FAILED,
                )
            )
            position = reply.position
    except ParleyError as exc:  # stopped or deleted meanwhile: delete it anyway
        if exc.code not in (ErrorCode.INVALID_STATE_TRANSITION, ErrorCode.AGENT_NOT_FOUND):
            raise
    try:
        deleted = await registry.delete_agent(
            DeleteAgent(namespace=namespace, request_id=request_id, agent_id=agent_id)
        )
    except ParleyError as exc:
        if exc.code != ErrorCode.AGENT_NOT_FOUND:
            raise
        return position
    return max(position, deleted.position)


async def discard(
    registry: Registry, namespace: str, agent_ids: list[str], request_id: str | None
) -> None:
    """Compensate a failed create: remove the agents it created (best effort, shielded)."""
    if not agent_ids:
        return
    removal = each(lambda a: remove(registry, namespace, a, request_id), list(agent_ids))
    try:
        await asyncio.shield(removal)
    except Exception:  # the original error is the one to report
        log.exception("could not remove the agents %s of a failed cluster create", agent_ids)


async def check_agents(registry: Registry, command: CreateCluster, specs: list[AgentSpec]) -> None:
    """Every agent definition valid and its name free, before anything is appended.

    Agents left over by a crashed create of this cluster are removed.

    Raises:
        ParleyError: Every problem at once, each with its manifest field path
            (``spec.agents[1].tools[0].name``); the code is the first problem's.
    """
    manifest = command.manifest
    problems: list[dict[str, str]] = []
    for index, spec in enumerate(specs):
        path = field_of(manifest, index)
        if index > 0 and manifest.spec.template is not None:
            continue  # replicas share one definition: report its problems once
        try:
            validate_spec(spec)
            await registry.check_persona(command.namespace, spec.persona)
        except ParleyError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            for error in details.get("errors", []):
                problems.append({**error, "field": f"{path}.{error['field']}"})
    gate = asyncio.Semaphore(PARALLEL)

    async def holder_of(name: str) -> Agent | None:
        async with gate:
            return await registry.name_holder(command.namespace, name)

    orphans: list[str] = []
    holders = await asyncio.gather(*(holder_of(spec.name) for spec in specs))
    for index, (spec, holder) in enumerate(zip(specs, holders, strict=True)):
        if holder is None:
            continue
        if orphan_of(holder, manifest.metadata.name, utcnow()):
            orphans.append(holder.id)
            continue
        problems.append(
            {
                "field": f"{field_of(manifest, index)}.name",
                "code": ErrorCode.AGENT_ALREADY_EXISTS,
                "message": f"an agent named {spec.name!r} already exists (id {holder.id})",
            }
        )
    if problems:
        raise refusal(problems)
    for orphan in orphans:
        await remove(registry, command.namespace, orphan, command.request_id)
