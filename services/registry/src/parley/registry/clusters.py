"""Cluster handlers: a named group of agents, created and driven through the agent handlers.

Each handler decides on the cluster with :func:`parley.aggregates.cluster.decide`, acts on the
agents with :class:`~parley.registry.handlers.Registry`'s own commands (so every agent rule
holds; see :mod:`.cluster_agents`), and appends the cluster's event last:

- create validates the whole manifest first (nothing is appended for a bad one), creates the
  agents, starts them, then appends ``cluster.created``. If anything fails half way, the
  agents already created are stopped and deleted again (compensation) and the error is
  reported. An agent left over by a registry that died mid-create (labelled with the cluster,
  the cluster not created, older than :data:`~parley.registry.domain.CLAIM_GRACE`) is
  deleted by the next create of that cluster, so a crash never blocks a name for good.
- pause/resume act on the agents not yet in the target state, then append the cluster event.
- delete stops and deletes its agents, then appends ``cluster.deleted``.
- scale opens the window (``cluster.scale_started`` at the expected version: a concurrent
  scale is ``SCALING_IN_PROGRESS``), sets the agent's ``instances``, and closes it.
- resize opens the window (``cluster.resize_started``), then either creates the new
  replicas from the template (and starts them unless the cluster is paused; on a failure the
  ones created are removed again), or stops and deletes the newest members one at a time,
  newest first (the members left are always the oldest, so replica ``k`` keeps its name);
  ``cluster.resized`` or ``cluster.resize_failed`` records the members after it.
- change template (sent by the deployment service once a cluster's template deployment
  completed: its agents carry the template already) appends ``cluster.template_changed``.
"""

from collections.abc import Awaitable

from parley.aggregates import cluster
from parley.aggregates.cluster import Cluster
from parley.aggregates.cluster import CreateWithAgents
from parley.aggregates.cluster import EndResize
from parley.aggregates.cluster import EndScale
from parley.aggregates.cluster import agent_specs
from parley.aggregates.cluster import resized
from parley.aggregates.decision import Context
from parley.contracts.clusters import ChangeClusterTemplate
from parley.contracts.clusters import ClusterCommand
from parley.contracts.clusters import ClusterReply
from parley.contracts.clusters import ClusterResizeStarted
from parley.contracts.clusters import ClusterScaleStarted
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ResizeCluster
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.clusters import cluster_stream
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import UpdateAgent
from parley.eventstore.repository import Outcome
from parley.registry.cluster_agents import act
from parley.registry.cluster_agents import check_agents
from parley.registry.cluster_agents import discard
from parley.registry.cluster_agents import each
from parley.registry.cluster_agents import make
from parley.registry.cluster_agents import remove
from parley.registry.domain import cluster_actions
from parley.registry.handlers import Registry
from parley.registry.handlers import execute
from parley.registry.handlers import reply_for_error

__all__ = [
    "change_cluster_template",
    "create_cluster",
    "delete_cluster",
    "resize_cluster",
    "scale_cluster",
    "update_cluster",
]


async def create_cluster(registry: Registry, command: CreateCluster) -> ClusterReply:
    """Create the cluster's agents (and start them), then record the cluster."""
    manifest = command.manifest
    name = manifest.metadata.name
    current = await registry.clusters.load(cluster_stream(command.namespace, name), fresh=True)
    specs = agent_specs(manifest)
    placeholders = CreateWithAgents(command=command, agent_ids=[""] * len(specs))
    cluster.decide(current.state, placeholders, Context())  # its refusals only
    await check_agents(registry, command, specs)
    created: list[str] = []
    last = 0
    try:
        ids = [new_id() for _ in specs]

        def create(index: int) -> Awaitable[int]:
            return make(registry, command, specs[index], ids[index], created)

        last = max(await each(create, range(len(specs))), default=0)
        if command.start:
            started = await each(lambda i: act(registry, command, ids[i], "start"), range(len(ids)))
            last = max([last, *started])
        outcome = await _decide(registry, command, CreateWithAgents(command=command, agent_ids=ids))
    except BaseException:
        await discard(registry, command.namespace, created, command.request_id)
        raise
    return _reply(name, outcome, last)


async def update_cluster(registry: Registry, command: UpdateCluster) -> ClusterReply:
    """Pause or resume every agent of the cluster (those already there are skipped)."""
    wanted = cluster_actions(command.action)

    async def one(agent_id: str) -> int:
        found = await registry.live_agent(agent_id)
        action = wanted.get(found.state) if found is not None else None
        if action is None:
            return 0
        try:
            return await act(registry, command, agent_id, action)
        except ParleyError as exc:  # moved on concurrently (a user paused it meanwhile)
            if exc.code in (ErrorCode.INVALID_STATE_TRANSITION, ErrorCode.AGENT_NOT_FOUND):
                return 0
            raise

    last = max(await each(one, (await _checked(registry, command)).agent_ids), default=0)
    return _reply(command.name, await _decide(registry, command, command), last)


async def delete_cluster(registry: Registry, command: DeleteCluster) -> ClusterReply:
    """Stop and delete every agent of the cluster, then the cluster."""
    positions = await each(
        lambda agent_id: remove(registry, command.namespace, agent_id, command.request_id),
        (await _checked(registry, command)).agent_ids,
    )
    outcome = await _decide(registry, command, command)
    return _reply(command.name, outcome, max(positions, default=0))


async def scale_cluster(registry: Registry, command: ScaleCluster) -> ClusterReply:
    """Set one agent's instances inside a scale window."""
    opened = await _decide(registry, command, command)
    assert opened.state is not None and opened.state.scaling is not None
    scaling = opened.state.scaling
    assert scaling.agent_id is not None and scaling.agent_name is not None
    started = ClusterScaleStarted(
        name=command.name,
        agent_id=scaling.agent_id,
        agent_name=scaling.agent_name,
        instances=command.instances,
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
        error: ErrorBody | None = reply_for_error(exc).error
        await _decide(registry, command, EndScale(started=started, error=error))
        raise
    closed = await _decide(registry, command, EndScale(started=started))
    return _reply(command.name, closed, changed.position)


async def resize_cluster(registry: Registry, command: ResizeCluster) -> ClusterReply:
    """Create or remove agents, inside a resize window, until the cluster holds the target."""
    opened = await _decide(registry, command, command)
    state = opened.state
    assert state is not None
    if opened.appended == 0:  # already that many agents
        return _reply(command.name, opened, 0)
    members = list(state.agent_ids)
    started = ClusterResizeStarted(
        name=command.name, from_agents=len(members), to_agents=command.target_agents
    )
    try:
        if command.target_agents > len(members):
            last = await _grow(registry, command, state, members)
        else:
            last = await _shrink(registry, command, members)
    except Exception as exc:
        end = EndResize(started=started, agent_ids=members, error=reply_for_error(exc).error)
        await _decide(registry, command, end)
        raise
    closed = await _decide(registry, command, EndResize(started=started, agent_ids=members))
    return _reply(command.name, closed, last)


async def change_cluster_template(
    registry: Registry, command: ChangeClusterTemplate
) -> ClusterReply:
    """Record the template a completed deployment gave the agents (nothing if it is it)."""
    return _reply(command.name, await _decide(registry, command, command), 0)


async def _grow(
    registry: Registry, command: ResizeCluster, state: Cluster, members: list[str]
) -> int:
    """Create (and start, unless paused) the new replicas; ``members`` gets them once all
    are made. On a failure the ones created are removed again."""
    specs = agent_specs(resized(state.manifest, command.target_agents))[len(members) :]
    ids = [new_id() for _ in specs]
    created: list[str] = []

    async def create(index: int) -> int:
        position = await make(registry, command, specs[index], ids[index], created)
        if state.state == "paused":
            return position
        return await act(registry, command, ids[index], "start")

    try:
        last = max(await each(create, range(len(specs))), default=0)
    except BaseException:
        await discard(registry, command.namespace, created, command.request_id)
        raise
    members.extend(ids)
    return last


async def _shrink(registry: Registry, command: ResizeCluster, members: list[str]) -> int:
    """Stop and delete the newest members, newest first, until ``target_agents`` are left;
    ``members`` loses each one once it is gone (so a failure leaves the oldest)."""
    last = 0
    while len(members) > command.target_agents:
        last = max(last, await remove(registry, command.namespace, members[-1], command.request_id))
        members.pop()
    return last


async def _checked(registry: Registry, command: UpdateCluster | DeleteCluster) -> Cluster:
    """The live cluster the command is about, as stored now (else the decider's refusal)."""
    stream = cluster_stream(command.namespace, command.name)
    current = await registry.clusters.load(stream, fresh=True)
    cluster.decide(current.state, command, Context())
    assert current.state is not None
    return current.state


async def _decide(
    registry: Registry, command: ClusterCommand, decided: cluster.Command
) -> Outcome[Cluster]:
    """Decide ``decided`` on the cluster ``command`` is about and append its events."""
    name = command.manifest.metadata.name if isinstance(command, CreateCluster) else command.name
    return await execute(
        registry.clusters,
        cluster_stream(command.namespace, name),
        cluster.decide,
        decided,
        subject=name,
        origin=command,
    )


def _reply(name: str, outcome: Outcome[Cluster], last: int) -> ClusterReply:
    """The reply; ``last`` is the position of the agents' last event, if later."""
    state = outcome.state
    ids = list(state.agent_ids) if state is not None else []
    position = max(last, outcome.position)
    return ClusterReply(
        ok=True, name=name, agent_ids=ids, version=outcome.version, position=position
    )
