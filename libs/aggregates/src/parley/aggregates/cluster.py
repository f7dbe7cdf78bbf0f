"""The cluster, folded from its stream ``cluster_stream(namespace, name)``, and its decider.

The registry decides with :func:`decide` and creates or drives the agents around it; the
edge's projection folds the same :func:`evolve`. Both are pure: time comes in as ``now``.

A scale is a window: ``cluster.scale_started`` (an agent's instances) or
``cluster.resize_started`` (the number of agents) opens it, appended at the stream's expected
version so two concurrent scales cannot both open it; ``cluster.scaled``/``scale_failed`` or
``cluster.resized``/``resize_failed`` closes it. A window left open longer than
:data:`SCALE_TIMEOUT` (the registry died in between) counts as abandoned and no longer blocks.

A resize changes the members: a template's ``replicas`` (or the explicit ``agents``, which
can only shrink) follows the agent count, so replica ``k`` stays ``<name>-<k>`` and the
newest members are the ones removed.

A template deployment that completed changes the template (``cluster.template_changed``):
its agents already carry it (each as :func:`member_spec`), and the agents made later are
made from it.

Besides the wire's cluster commands, :func:`decide` takes three of the registry's own:
:class:`CreateWithAgents` (a create, once the ids of its agents are known),
:class:`EndScale` and :class:`EndResize` (close a scale window).
"""

from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Literal
from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.fold import CorruptStreamError
from parley.aggregates.fold import Folded
from parley.aggregates.fold import born
from parley.aggregates.fold import created
from parley.aggregates.fold import kinds
from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.clusters import EVENT_TYPES
from parley.contracts.clusters import ChangeClusterTemplate
from parley.contracts.clusters import ClusterCreated
from parley.contracts.clusters import ClusterDeleted
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import ClusterResized
from parley.contracts.clusters import ClusterResizeFailed
from parley.contracts.clusters import ClusterResizeStarted
from parley.contracts.clusters import ClusterScaled
from parley.contracts.clusters import ClusterScaleFailed
from parley.contracts.clusters import ClusterScaleStarted
from parley.contracts.clusters import ClusterStateChanged
from parley.contracts.clusters import ClusterTemplateChanged
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ResizeCluster
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.clusters import cluster_stream
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec

__all__ = [
    "CATEGORY",
    "FOLDS",
    "SCALE_TIMEOUT",
    "Cluster",
    "Command",
    "CreateWithAgents",
    "EndResize",
    "EndScale",
    "Scaling",
    "agent_specs",
    "member_spec",
    "resized",
    "decide",
    "evolve",
    "field_of",
    "manifest_problems",
]

CATEGORY = cluster_stream.category
"""The stream category this aggregate folds (``cluster-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "cluster")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

SCALE_TIMEOUT = timedelta(seconds=30)
"""A scale window open longer than this is abandoned (its registry died mid-scale)."""

_NAME_MAX = 128


class CreateWithAgents(msgspec.Struct, frozen=True, kw_only=True):
    """Record a cluster create once its agents are made."""

    command: CreateCluster
    agent_ids: list[str]
    """The ids of the agents created, one per :func:`agent_specs`."""


class EndScale(msgspec.Struct, frozen=True, kw_only=True):
    """Close the scale window ``started`` opened: ``cluster.scaled`` or ``scale_failed``."""

    started: ClusterScaleStarted
    error: ErrorBody | None = None
    """Why the scale failed; None when it succeeded."""


class EndResize(msgspec.Struct, frozen=True, kw_only=True):
    """Close the resize window ``started`` opened: ``cluster.resized`` or ``resize_failed``."""

    started: ClusterResizeStarted
    agent_ids: list[str]
    """The cluster's agents now, oldest first (a prefix of the old ones, or them plus new)."""
    error: ErrorBody | None = None
    """Why the resize failed; None when it succeeded."""


Command = (
    CreateWithAgents
    | UpdateCluster
    | DeleteCluster
    | ScaleCluster
    | ResizeCluster
    | EndScale
    | EndResize
    | ChangeClusterTemplate
)
"""What :func:`decide` takes (a bare ``CreateCluster`` comes as :class:`CreateWithAgents`)."""


class Scaling(msgspec.Struct, frozen=True, kw_only=True):
    """An open scale window: of one agent's instances, or of the number of agents."""

    started_at: datetime
    agent_id: str | None = None
    agent_name: str | None = None
    instances: int | None = None
    target_agents: int | None = None
    """Set for a resize (the agent fields are then None)."""

    def details(self, name: str) -> dict[str, object]:
        """``SCALING_IN_PROGRESS`` details: the cluster, and what it is scaling."""
        if self.target_agents is not None:
            return {"name": name, "target_agents": self.target_agents}
        return {"name": name, "agent_name": self.agent_name}


class Cluster(Folded, frozen=True, kw_only=True):
    """A cluster as folded from its stream."""

    name: str
    manifest: ClusterManifest
    agent_ids: tuple[str, ...]
    """The agents it created, in manifest order (see :func:`agent_specs`)."""
    state: Literal["active", "paused", "deleted"]
    updated_at: datetime
    scaling: Scaling | None = None
    """The open scale window, if any (check :meth:`scaling_at` for abandonment)."""

    @property
    def live(self) -> bool:
        """Not deleted."""
        return self.state != "deleted"

    def scaling_at(self, now: datetime) -> Scaling | None:
        """The scale window still in progress at ``now`` (an abandoned one is None)."""
        if self.scaling is not None and now - self.scaling.started_at < SCALE_TIMEOUT:
            return self.scaling
        return None

    def agent_id(self, agent_name: str) -> str | None:
        """Id of the agent the manifest names ``agent_name``."""
        names = [spec.name for spec in agent_specs(self.manifest)]
        for name, agent_id in zip(names, self.agent_ids, strict=False):
            if name == agent_name:
                return agent_id
        return None


# --- the manifest --------------------------------------------------------------------------


def agent_specs(manifest: ClusterManifest) -> list[AgentSpec]:
    """The agents a manifest declares, in order, as the registry creates them.

    Template replicas are named ``<name>-1`` … ``<name>-N``. Every agent gets the cluster's
    labels (its own win) and ``parley.dev/cluster=<cluster name>``, and the cluster's budget
    when it has none of its own. ``idle_timeout`` and ``scale_to_zero`` have no agent field
    and stay on the cluster.
    """
    spec = manifest.spec
    if spec.template is not None:
        base = spec.template.spec
        declared = [
            msgspec.structs.replace(base, name=f"{base.name}-{k}")
            for k in range(1, spec.template.replicas + 1)
        ]
    else:
        declared = list(spec.agents)
    labels = manifest.metadata.labels
    return [
        msgspec.structs.replace(
            agent,
            labels={**labels, **agent.labels, CLUSTER_LABEL: manifest.metadata.name},
            budget=agent.budget if agent.budget is not None else spec.budget,
        )
        for agent in declared
    ]


def member_spec(current: AgentSpec, template: AgentSpec) -> AgentSpec:
    """A new template as one agent of the cluster (or as the cluster's template): it keeps
    its name, its instances, its labels (the cluster's among them; the template's added) and,
    when the template has none, its budget (the cluster's), as :func:`agent_specs` gave them."""
    return msgspec.structs.replace(
        template,
        name=current.name,
        instances=current.instances,
        labels={**current.labels, **template.labels},
        budget=template.budget if template.budget is not None else current.budget,
    )


def resized(manifest: ClusterManifest, count: int) -> ClusterManifest:
    """The manifest holding ``count`` agents: a template's ``replicas``, or its first
    ``count`` explicit agents (which cannot grow: there is no definition to copy)."""
    spec = manifest.spec
    if spec.template is not None:
        template = msgspec.structs.replace(spec.template, replicas=count)
        spec = msgspec.structs.replace(spec, template=template)
    else:
        spec = msgspec.structs.replace(spec, agents=spec.agents[:count])
    return msgspec.structs.replace(manifest, spec=spec)


def field_of(manifest: ClusterManifest, index: int) -> str:
    """Path of the definition of the ``index``-th expanded agent, e.g. ``spec.agents[1]``."""
    return "spec.template.spec" if manifest.spec.template is not None else f"spec.agents[{index}]"


def manifest_problems(manifest: ClusterManifest) -> list[dict[str, str]]:
    """Problems of a manifest beyond its schema: ``[{"field", "code", "message"}]``."""
    problems: list[dict[str, str]] = []

    def fail(field: str, message: str) -> None:
        problems.append({"field": field, "code": ErrorCode.VALIDATION_ERROR, "message": message})

    spec = manifest.spec
    if spec.template is not None and spec.agents:
        fail("spec", "give either agents or a template, not both")
        return problems
    if spec.template is None and not spec.agents:
        fail("spec", "give agents (a list of agent definitions) or a template with replicas")
        return problems
    if spec.template is not None:
        template = spec.template
        longest = f"{template.spec.name}-{template.replicas}"
        if len(longest) > _NAME_MAX:
            fail(
                "spec.template.spec.name",
                f"replica names like {longest[:40]!r}… exceed {_NAME_MAX} characters",
            )
    else:
        seen: dict[str, int] = {}
        for i, agent in enumerate(spec.agents):
            if agent.name in seen:
                first = f"spec.agents[{seen[agent.name]}]"
                fail(f"spec.agents[{i}].name", f"{agent.name!r} is used twice (also {first})")
            seen.setdefault(agent.name, i)
    count = spec.template.replicas if spec.template is not None else len(spec.agents)
    limit = spec.resource_policy.max_concurrent_agents
    if limit is not None and count > limit:
        fail(
            "spec.resource_policy.max_concurrent_agents",
            f"the cluster declares {count} agents, more than max_concurrent_agents={limit}",
        )
    return problems


# --- decide --------------------------------------------------------------------------------


def decide(state: Cluster | None, command: Command, ctx: Context) -> Decision[Never]:
    """The cluster events a command causes (the handler does the agents' part).

    Args:
        state: The cluster folded from its stream, or None for an empty stream.
        command: Create, update (pause/resume), delete, scale, or the end of a scale.
        ctx: Decision time (scale windows older than :data:`SCALE_TIMEOUT` are abandoned).

    Raises:
        ParleyError: ``CLUSTER_EXISTS``, ``CLUSTER_NOT_FOUND``, ``SCALING_IN_PROGRESS``,
            ``VALIDATION_ERROR`` (a bad manifest, or a scale of an agent not in the cluster).
    """
    if isinstance(command, CreateWithAgents):
        return Decision(_create(command.command, state, command.agent_ids))
    if isinstance(command, EndScale):
        return Decision(_scale_end(state, command.started, command.error))
    if isinstance(command, EndResize):
        return Decision(_resize_end(state, command))
    return Decision(_decided(state, command, ctx.now))


def _decided(
    state: Cluster | None,
    command: UpdateCluster | DeleteCluster | ScaleCluster | ResizeCluster | ChangeClusterTemplate,
    now: datetime,
) -> Decided:
    cluster = _live(state, command.name, command.namespace)
    if (scaling := cluster.scaling_at(now)) is not None:
        what = (
            f"to {scaling.target_agents} agents"
            if scaling.target_agents is not None
            else repr(scaling.agent_name)
        )
        raise ParleyError(
            ErrorCode.SCALING_IN_PROGRESS,
            f"cluster {cluster.name!r} is scaling {what}; retry when it ends",
            scaling.details(cluster.name),
        )
    ids = list(cluster.agent_ids)
    if isinstance(command, UpdateCluster):
        target = "paused" if command.action == "pause" else "active"
        if cluster.state == target:
            return []
        event = "cluster.paused" if command.action == "pause" else "cluster.resumed"
        return [(event, ClusterStateChanged(name=cluster.name, agent_ids=ids))]
    if isinstance(command, DeleteCluster):
        return [("cluster.deleted", ClusterDeleted(name=cluster.name, agent_ids=ids))]
    if isinstance(command, ScaleCluster):
        agent_id = cluster.agent_id(command.agent_name)
        if agent_id is None:
            names = [spec.name for spec in agent_specs(cluster.manifest)]
            raise ParleyError(
                ErrorCode.VALIDATION_ERROR,
                f"agent_name: cluster {cluster.name!r} has no agent {command.agent_name[:128]!r}",
                {
                    "errors": [
                        {
                            "field": "agent_name",
                            "code": ErrorCode.VALIDATION_ERROR,
                            "message": f"not an agent of the cluster; one of {names[:20]}",
                        }
                    ]
                },
            )
        started = ClusterScaleStarted(
            name=cluster.name,
            agent_id=agent_id,
            agent_name=command.agent_name,
            instances=command.instances,
        )
        return [("cluster.scale_started", started)]
    if isinstance(command, ResizeCluster):
        return _resize(cluster, command.target_agents)
    if isinstance(command, ChangeClusterTemplate):
        return _change_template(cluster, command)
    raise TypeError(f"not a cluster command: {type(command).__name__}")


def _change_template(cluster: Cluster, command: ChangeClusterTemplate) -> Decided:
    """The template ``command``'s deployment gave the agents (none if it is the template)."""
    template = cluster.manifest.spec.template
    if template is None:
        message = f"cluster {cluster.name!r} lists its agents and has no template to change"
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"name: {message}",
            {"errors": [{"field": "name", "code": ErrorCode.VALIDATION_ERROR, "message": message}]},
        )
    new = member_spec(template.spec, command.spec)
    if new == template.spec:
        return []
    changed = ClusterTemplateChanged(
        name=cluster.name, template=new, deployment_id=command.deployment_id
    )
    return [("cluster.template_changed", changed)]


def _scale_end(
    state: Cluster | None, started: ClusterScaleStarted, error: ErrorBody | None
) -> Decided:
    """Close the window ``started`` opened; nothing is decided when it is no longer open (it
    was abandoned and another scale took over, or the cluster was deleted): closing it would
    end someone else's.
    """
    scaling = state.scaling if state is not None else None
    if scaling is None or (scaling.agent_id, scaling.instances) != (
        started.agent_id,
        started.instances,
    ):
        return []
    fields = msgspec.structs.asdict(started)
    if error is not None:
        return [("cluster.scale_failed", ClusterScaleFailed(**fields, error=error))]
    return [("cluster.scaled", ClusterScaled(**fields))]


def _resize(cluster: Cluster, target: int) -> Decided:
    """Open a resize window from the cluster's agent count to ``target`` (none if equal)."""
    current = len(cluster.agent_ids)
    if target == current:
        return []
    problems = []
    if target > current and cluster.manifest.spec.template is None:
        problems.append(
            f"cluster {cluster.name!r} lists its agents explicitly and has no template to"
            f" create more from; it can only shrink (it holds {current})"
        )
    problems += [p["message"] for p in manifest_problems(resized(cluster.manifest, target))]
    if problems:
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"target_agents: {problems[0]}",
            {
                "errors": [
                    {"field": "target_agents", "code": ErrorCode.VALIDATION_ERROR, "message": p}
                    for p in problems
                ]
            },
        )
    started = ClusterResizeStarted(name=cluster.name, from_agents=current, to_agents=target)
    return [("cluster.resize_started", started)]


def _resize_end(state: Cluster | None, end: EndResize) -> Decided:
    """Close the resize window ``end.started`` opened (nothing once it is no longer open)."""
    scaling = state.scaling if state is not None else None
    if scaling is None or scaling.target_agents != end.started.to_agents:
        return []
    fields = {**msgspec.structs.asdict(end.started), "agent_ids": end.agent_ids}
    if end.error is not None:
        return [("cluster.resize_failed", ClusterResizeFailed(**fields, error=end.error))]
    return [("cluster.resized", ClusterResized(**fields))]


def _create(command: CreateCluster, state: Cluster | None, agent_ids: list[str]) -> Decided:
    manifest = command.manifest
    name = manifest.metadata.name
    if state is not None and state.live:
        raise ParleyError(
            ErrorCode.CLUSTER_EXISTS,
            f"a cluster named {name!r} already exists in namespace {command.namespace};"
            " delete it first or choose another name",
            {"name": name, "namespace": command.namespace},
        )
    problems = manifest_problems(manifest)
    if manifest.metadata.namespace != command.namespace:
        message = f"the command is for namespace {command.namespace!r}"
        problems.insert(
            0,
            {"field": "metadata.namespace", "code": ErrorCode.VALIDATION_ERROR, "message": message},
        )
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"{first['field']}: {first['message']}{more}",
            {"errors": problems},
        )
    if len(agent_ids) != len(agent_specs(manifest)):
        raise ParleyError(
            ErrorCode.INVALID_REQUEST, "a create needs one agent id per agent of the manifest"
        )
    return [("cluster.created", ClusterCreated(name=name, manifest=manifest, agent_ids=agent_ids))]


def _live(state: Cluster | None, name: str, namespace: str) -> Cluster:
    if state is None or not state.live or state.namespace != namespace:
        raise ParleyError(
            ErrorCode.CLUSTER_NOT_FOUND,
            f"no cluster {name!r} in namespace {namespace}",
            {"name": name},
        )
    return state


# --- evolve --------------------------------------------------------------------------------


def evolve(state: Cluster | None, event: Event) -> Cluster | None:
    """Fold one recorded event into a cluster.

    A create after a delete starts the cluster afresh on the same stream; unknown event
    types only advance ``version``.

    Raises:
        CorruptStreamError: On a create over a live cluster, or an event before any create.
        msgspec.ValidationError: If ``event.data`` does not match its payload type.
    """
    if event.type == "cluster.created":
        create = created(event, ClusterCreated, exists=state is not None and state.live)
        return Cluster(
            name=create.name,
            manifest=create.manifest,
            agent_ids=tuple(create.agent_ids),
            state="active",
            updated_at=event.time,
            **born(event),
        )
    if state is None:
        if event.type in EVENT_TYPES:
            raise CorruptStreamError.before(event, "cluster.created")
        return None
    bump: dict[str, Any] = {"version": event.version, "updated_at": event.time}
    if event.type == "cluster.paused":
        bump["state"] = "paused"
    elif event.type == "cluster.resumed":
        bump["state"] = "active"
    elif event.type == "cluster.scale_started":
        started = msgspec.convert(event.data, ClusterScaleStarted)
        bump["scaling"] = Scaling(
            agent_id=started.agent_id,
            agent_name=started.agent_name,
            instances=started.instances,
            started_at=event.time,
        )
    elif event.type in ("cluster.scaled", "cluster.scale_failed"):
        bump["scaling"] = None
    elif event.type == "cluster.resize_started":
        target = msgspec.convert(event.data, ClusterResizeStarted).to_agents
        bump["scaling"] = Scaling(target_agents=target, started_at=event.time)
    elif event.type in ("cluster.resized", "cluster.resize_failed"):
        members = msgspec.convert(event.data, ClusterResized).agent_ids  # and _failed's
        bump.update(
            scaling=None,
            agent_ids=tuple(members),
            manifest=resized(state.manifest, len(members)),
        )
    elif event.type == "cluster.template_changed":
        bump["manifest"] = _templated(
            state.manifest, msgspec.convert(event.data, ClusterTemplateChanged).template
        )
    elif event.type == "cluster.deleted":
        bump.update(state="deleted", scaling=None)
    else:
        del bump["updated_at"]  # not a change this aggregate knows about
    return msgspec.structs.replace(state, **bump)


def _templated(manifest: ClusterManifest, spec: AgentSpec) -> ClusterManifest:
    """The manifest with its template's definition ``spec`` (its replicas kept)."""
    template = manifest.spec.template
    if template is None:  # pragma: no cover - decide refuses a cluster without one
        raise CorruptStreamError("cluster.template_changed on a cluster without a template")
    changed = msgspec.structs.replace(template, spec=spec)
    return msgspec.structs.replace(
        manifest, spec=msgspec.structs.replace(manifest.spec, template=changed)
    )
