"""Cluster commands: a named group of agents, created and driven through the agent handlers.

Each handler decides on the cluster with :func:`parley.aggregates.cluster.decide`, acts on the
agents with :class:`~parley.registry.handlers.Registry`'s own commands (so every agent rule
holds), and appends the cluster's event last:

- create validates the whole manifest first (nothing is appended for a bad one), creates the
  agents, starts them, then appends ``cluster.created``. If anything fails half way, the
  agents already created are stopped and deleted again (compensation) and the error is
  reported. An agent left over by a registry that died mid-create (labelled with the cluster,
  the cluster not created, older than :data:`~parley.registry.handlers.CLAIM_GRACE`) is
  deleted by the next create of that cluster, so a crash never blocks a name for good.
- pause/resume act on the agents not yet in the target state, then append the cluster event.
- delete stops and deletes its agents, then appends ``cluster.deleted``.
- scale opens the window (``cluster.scale_started`` at the expected version: a concurrent
  scale is ``SCALING_IN_PROGRESS``), sets the agent's ``instances``, and closes it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from parley.aggregates.agent import Agent
from parley.aggregates.agent import evolve as evolve_agent
from parley.aggregates.cluster import (
    Cluster,
    ClusterRefused,
    agent_specs,
    decide,
    decide_scale_end,
    evolve,
    field_of,
)
from parley.contracts.clusters import (
    CLUSTER_LABEL,
    ClusterCommand,
    ClusterReply,
    ClusterScaleStarted,
    CreateCluster,
    DeleteCluster,
    ScaleCluster,
    UpdateCluster,
    cluster_stream,
)
from parley.contracts.envelope import NewEvent, utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.registry import (
    AgentAction,
    AgentActionCommand,
    AgentPatch,
    AgentSpec,
    AgentState,
    CommandReply,
    CreateAgent,
    DeleteAgent,
    UpdateAgent,
    agent_stream,
    name_stream,
)
from parley.eventstore.kernel import Loaded, execute, load
from parley.kit.telemetry import current_traceparent
from parley.registry.domain import Decided, DomainError, as_new_events, evolve_claim
from parley.registry.handlers import CLAIM_GRACE, Registry, reply_for_error
from parley.registry.personas import check_persona
from parley.registry.validation import validate_spec

__all__ = ["create_cluster", "delete_cluster", "scale_cluster", "update_cluster"]

log = logging.getLogger(__name__)

PARALLEL = 16
"""Agents created, started or deleted at once by one cluster command."""


async def create_cluster(registry: Registry, command: CreateCluster) -> ClusterReply:
    """Create the cluster's agents (and start them), then record the cluster."""
    manifest = command.manifest
    name = manifest.metadata.name
    stream = cluster_stream(command.namespace, name)
    current = await load(registry.store, stream, evolve)
    specs = agent_specs(manifest)
    placeholders = [""] * len(specs)
    _domain(lambda: decide(command, current.state, now=utcnow(), agent_ids=placeholders))
    await _check_agents(registry, command, specs)
    created: list[str] = []
    last = 0
    try:
        ids = [new_id() for _ in specs]

        async def create(index: int) -> int:
            reply = await registry.create_agent(
                CreateAgent(
                    namespace=command.namespace,
                    request_id=command.request_id,
                    spec=specs[index],
                    agent_id=ids[index],
                )
            )
            created.append(ids[index])
            return reply.position

        last = max(await _each(create, range(len(specs))), default=0)
        if command.start:
            started = await _each(
                lambda i: _act(registry, command, ids[i], "start"), range(len(ids))
            )
            last = max([last, *started])
        outcome = await execute(
            registry.store,
            stream,
            _decider(command, name, lambda s: decide(command, s, now=utcnow(), agent_ids=ids)),
            evolve,
        )
    except BaseException:
        await _discard(registry, command.namespace, created, command.request_id)
        raise
    return _reply(name, outcome.state, outcome.version, max(last, outcome.position))


async def update_cluster(registry: Registry, command: UpdateCluster) -> ClusterReply:
    """Pause or resume every agent of the cluster (those already there are skipped)."""
    current = await load(registry.store, cluster_stream(command.namespace, command.name), evolve)
    cluster = _checked(command, current)
    wanted = (
        {AgentState.RUNNING: "pause"}
        if command.action == "pause"
        else {
            AgentState.PAUSED: "resume",
            AgentState.CREATED: "start",
        }
    )

    async def act(agent_id: str) -> int:
        agent = await _agent(registry, agent_id)
        action = wanted.get(agent.state) if agent is not None else None
        if action is None:
            return 0
        try:
            return await _act(registry, command, agent_id, action)
        except DomainError as exc:  # moved on concurrently (a user paused it meanwhile)
            if exc.code in (ErrorCode.INVALID_STATE_TRANSITION, ErrorCode.AGENT_NOT_FOUND):
                return 0
            raise

    last = max(await _each(act, cluster.agent_ids), default=0)
    return await _finish(registry, command, last)


async def delete_cluster(registry: Registry, command: DeleteCluster) -> ClusterReply:
    """Stop and delete every agent of the cluster, then the cluster."""
    current = await load(registry.store, cluster_stream(command.namespace, command.name), evolve)
    cluster = _checked(command, current)
    positions = await _each(
        lambda agent_id: _remove(registry, command.namespace, agent_id, command.request_id),
        cluster.agent_ids,
    )
    return await _finish(registry, command, max(positions, default=0))


async def scale_cluster(registry: Registry, command: ScaleCluster) -> ClusterReply:
    """Set one agent's instances inside a scale window."""
    stream = cluster_stream(command.namespace, command.name)
    opened = await execute(
        registry.store,
        stream,
        _decider(command, command.name, lambda s: decide(command, s, now=utcnow())),
        evolve,
    )
    assert opened.state is not None and opened.state.scaling is not None
    scaling = opened.state.scaling
    started = ClusterScaleStarted(
        name=command.name,
        agent_id=scaling.agent_id,
        agent_name=scaling.agent_name,
        instances=scaling.instances,
    )
    update = UpdateAgent(
        namespace=command.namespace,
        request_id=command.request_id,
        agent_id=started.agent_id,
        patch=AgentPatch(instances=command.instances),
    )
    try:
        changed = await registry.update_agent(update)
    except Exception as exc:
        error = reply_for_error(exc).error
        await execute(
            registry.store,
            stream,
            _decider(command, command.name, lambda s: decide_scale_end(s, started, error)),
            evolve,
        )
        raise
    closed = await execute(
        registry.store,
        stream,
        _decider(command, command.name, lambda s: decide_scale_end(s, started)),
        evolve,
    )
    return _reply(
        command.name, closed.state, closed.version, max(changed.position, closed.position)
    )


# --- helpers -------------------------------------------------------------------------------


def _domain(decision: Callable[[], object]) -> None:
    """Run a pure decision for its refusal only."""
    try:
        decision()
    except ClusterRefused as exc:
        raise DomainError(exc.code, exc.message, exc.details) from None


def _checked(command: UpdateCluster | DeleteCluster, current: Loaded[Cluster]) -> Cluster:
    _domain(lambda: decide(command, current.state, now=utcnow()))
    assert current.state is not None
    return current.state


async def _finish(
    registry: Registry, command: UpdateCluster | DeleteCluster, last: int
) -> ClusterReply:
    """Append the cluster's event (if its state changes) after the agents' part."""
    outcome = await execute(
        registry.store,
        cluster_stream(command.namespace, command.name),
        _decider(command, command.name, lambda s: decide(command, s, now=utcnow())),
        evolve,
    )
    return _reply(command.name, outcome.state, outcome.version, max(last, outcome.position))


def _decider(
    command: ClusterCommand, name: str, decision: Callable[[Cluster | None], Decided]
) -> Callable[[Cluster | None], list[NewEvent]]:
    traceparent = current_traceparent()

    def decider(state: Cluster | None) -> list[NewEvent]:
        try:
            decided = decision(state)
        except ClusterRefused as exc:
            raise DomainError(exc.code, exc.message, exc.details) from None
        return as_new_events(
            decided,
            subject=name,
            namespace=command.namespace,
            now=utcnow(),
            correlationid=command.request_id,
            traceparent=traceparent,
        )

    return decider


def _name(command: ClusterCommand) -> str:
    if isinstance(command, CreateCluster):
        return command.manifest.metadata.name
    return command.name


def _reply(name: str, state: Cluster | None, version: int, position: int) -> ClusterReply:
    ids = list(state.agent_ids) if state is not None else []
    return ClusterReply(ok=True, name=name, agent_ids=ids, version=version, position=position)


async def _each(work: Callable[[Any], Awaitable[int]], items: Iterable[Any]) -> list[int]:
    """Run ``work`` on every item, :data:`PARALLEL` at a time; after a failure the items not
    yet begun are skipped, and the first error is raised once every begun item has finished
    (so a compensation sees all that was done)."""
    gate = asyncio.Semaphore(PARALLEL)
    failed = False

    async def one(item: Any) -> int:
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


async def _agent(registry: Registry, agent_id: str) -> Agent | None:
    """The live agent ``agent_id`` (None when deleted or never created)."""
    agent = (await load(registry.store, agent_stream(agent_id), evolve_agent)).state
    return agent if agent is not None and not agent.deleted else None


async def _act(registry: Registry, command: ClusterCommand, agent_id: str, action: str) -> int:
    reply: CommandReply = await registry.agent_action(
        AgentActionCommand(
            namespace=command.namespace,
            request_id=command.request_id,
            agent_id=agent_id,
            action=AgentAction(action),
            reason=f"cluster {_name(command)}: {action}",
        )
    )
    return reply.position


async def _remove(registry: Registry, namespace: str, agent_id: str, request_id: str | None) -> int:
    """Stop (if it runs) and delete an agent; an agent already gone is skipped."""
    agent = await _agent(registry, agent_id)
    if agent is None:
        return 0
    position = 0
    try:
        if agent.state != AgentState.STOPPED:
            reply = await registry.agent_action(
                AgentActionCommand(
                    namespace=namespace,
                    request_id=request_id,
                    agent_id=agent_id,
                    action=AgentAction.STOP,
                    force=agent.state == AgentState.FAILED,
                )
            )
            position = reply.position
    except DomainError as exc:  # stopped or deleted meanwhile: delete it anyway
        if exc.code not in (ErrorCode.INVALID_STATE_TRANSITION, ErrorCode.AGENT_NOT_FOUND):
            raise
    try:
        deleted = await registry.delete_agent(
            DeleteAgent(namespace=namespace, request_id=request_id, agent_id=agent_id)
        )
    except DomainError as exc:
        if exc.code != ErrorCode.AGENT_NOT_FOUND:
            raise
        return position
    return max(position, deleted.position)


async def _discard(
    registry: Registry, namespace: str, agent_ids: list[str], request_id: str | None
) -> None:
    """Compensate a failed create: remove the agents it created (best effort, shielded)."""
    if not agent_ids:
        return
    removal = _each(lambda a: _remove(registry, namespace, a, request_id), list(agent_ids))
    try:
        await asyncio.shield(removal)
    except Exception:  # the original error is the one to report
        log.exception("could not remove the agents %s of a failed cluster create", agent_ids)


async def _check_agents(registry: Registry, command: CreateCluster, specs: list[AgentSpec]) -> None:
    """Every agent definition valid and its name free, before anything is appended.

    Raises:
        DomainError: Every problem at once, each with its manifest field path
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
            await check_persona(registry.store, command.namespace, spec.persona)
        except DomainError as exc:
            for error in (exc.details or {}).get("errors", []):
                problems.append({**error, "field": f"{path}.{error['field']}"})
    orphans: list[str] = []
    gate = asyncio.Semaphore(PARALLEL)

    async def holder_of(name: str) -> Agent | None:
        async with gate:
            return await _name_holder(registry, command.namespace, name)

    holders = await asyncio.gather(*(holder_of(spec.name) for spec in specs))
    for index, (spec, holder) in enumerate(zip(specs, holders, strict=True)):
        if holder is None:
            continue
        if _orphan_of(holder, manifest.metadata.name):
            orphans.append(holder.id)
            continue
        field = f"{field_of(manifest, index)}.name"
        problems.append(
            {
                "field": field,
                "code": ErrorCode.AGENT_ALREADY_EXISTS,
                "message": f"an agent named {spec.name!r} already exists (id {holder.id})",
            }
        )
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DomainError(
            ErrorCode(first["code"]),
            f"{first['field']}: {first['message']}{more}",
            {"errors": problems},
        )
    for orphan in orphans:
        await _remove(registry, command.namespace, orphan, command.request_id)


async def _name_holder(registry: Registry, namespace: str, name: str) -> Agent | None:
    """The live agent holding ``name`` in ``namespace``, if any."""
    claim = None
    for event in await registry.store.read(name_stream(namespace, name)):
        claim = evolve_claim(claim, event)
    if claim is None or claim.holder is None:
        return None
    return await _agent(registry, claim.holder)


def _orphan_of(agent: Agent, cluster: str) -> bool:
    """Left over by a create of ``cluster`` that died half way (the cluster was checked to
    be absent; a create still in flight is younger than the grace)."""
    return (
        agent.spec.labels.get(CLUSTER_LABEL) == cluster
        and utcnow() - agent.created_at > CLAIM_GRACE
    )
