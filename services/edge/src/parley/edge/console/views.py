"""The console's views: HTML fragments under ``/api/v1/console``, authenticated like the API.

Each view reads the edge's projections (or a stream) in the caller's namespace, so the role
guard and the namespace walls hold as they do for the JSON routes. ``?after=<position>``
makes a view wait (briefly) until its projections have applied that position: the page asks
with the position of the event that told it to refresh, and so never shows older state.
"""

from collections.abc import Iterable
from typing import Annotated
from typing import Any

from litestar import Request
from litestar import Response
from litestar import Router
from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.di import Provide
from litestar.params import FromPath
from litestar.params import QueryParameter

from parley.aggregates.deployment import evolve as evolve_deployment
from parley.aggregates.deployment_view import view as deployment_view
from parley.contracts.acl import AclMessage
from parley.contracts.deployments import SERVICE
from parley.contracts.deployments import DeploymentReply
from parley.contracts.deployments import DeploymentView
from parley.contracts.deployments import ListDeployments
from parley.contracts.deployments import deployment_stream
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import agent_stream
from parley.edge.console.charts import spark
from parley.edge.console.render import html
from parley.edge.console.rounds import bid_scores
from parley.edge.console.sequence import sequence_diagram
from parley.edge.console.series import charts
from parley.edge.console.series import runs
from parley.edge.controllers.lookups import ID
from parley.edge.controllers.lookups import require_agent
from parley.edge.controllers.resources import Scope
from parley.edge.dependencies import Writes
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.runtime_views import execution_view
from parley.edge.projections.versions import versions
from parley.eventstore.follower import Follower
from parley.eventstore.repository import fold

__all__ = ["view_router"]

After = Annotated[int | None, QueryParameter(ge=0, required=False)]
_CAUGHT_UP_S = 2.0
_MAX_ROWS = 100


class Console(Scope):
    """What every view takes: the caller's namespace, the edge's projections (``edge``) and
    the page's ``?after=`` (see :meth:`caught_up`)."""

    def __init__(
        self,
        request: Request[Any, Any, Any],
        state: State,
        ns: NamedDependency[str],
        after: After = None,
    ) -> None:
        super().__init__(request, state, ns)
        self.after = after

    async def caught_up(self, *views: Follower) -> int:
        """The position all ``views`` have applied, once it is ``after`` or later (or the wait
        gave up: the page then shows what there is, and the next event refreshes it again)."""
        if self.after is not None:
            for view in views:
                await view.wait_for(self.after, _CAUGHT_UP_S)
        return min(view.applied_position for view in views)


@get("/fleet")
async def fleet(console: NamedDependency[Console]) -> Response[str]:
    """Every agent of the namespace with its state, instances and spend; recent rounds."""
    ns, edge = console.ns, console.edge
    position = await console.caught_up(edge.agents, edge.runtime, edge.tasks)
    rows = sorted(edge.agents.agents(ns), key=lambda a: (a.spec.name, a.id))
    recent = sorted(edge.tasks.tasks(ns), key=lambda t: t.created_at, reverse=True)[:20]
    return html(
        "fleet.html",
        position,
        namespace=ns,
        agents=[(a, edge.runtime.metrics(a.id)) for a in rows],
        tasks=recent,
    )


@get("/fleet/rows")
async def fleet_rows(
    console: NamedDependency[Console],
    agent_id: Annotated[list[str], QueryParameter(max_items=_MAX_ROWS)],
) -> Response[str]:
    """These agents' rows of the fleet table; an agent deleted, or not of this namespace,
    gets an empty ``data-gone`` row (the page removes it)."""
    ns, agents, runtime = console.ns, console.edge.agents, console.edge.runtime
    position = await console.caught_up(agents, runtime)
    found = [(i, agents.get(ns, i) if ID.match(i) else None) for i in dict.fromkeys(agent_id)]
    rows = [(i, (a, runtime.metrics(a.id)) if a is not None else None) for i, a in found]
    return html("fleet_rows.html", position, rows=rows)


@get("/agents/{agent_id:str}")
async def agent(console: NamedDependency[Console], agent_id: FromPath[str]) -> Response[str]:
    """One agent: versions, sessions, executions, logs, conversations, deployments and
    small charts."""
    ns, edge = console.ns, console.edge
    runtime = edge.runtime
    position = await console.caught_up(edge.agents, runtime, edge.messages)
    found = require_agent(edge.agents, ns, agent_id)
    _, history = versions(await edge.store.read(agent_stream(agent_id)))
    executions = [execution_view(e) for e in runtime.execution_states(ns, agent_id)[-50:]]
    rollouts = await _deployments(console.writes, ns, agent_id)
    said = edge.messages.history(ns, agent_ids=frozenset({agent_id}))
    conversations = list(dict.fromkeys(m.conversation_id for _, m in reversed(said)))[:20]
    return html(
        "agent.html",
        position,
        agent=found,
        metrics=runtime.metrics(agent_id),
        versions=list(reversed(history)),
        sessions=runtime.sessions(ns, agent_id),
        executions=list(reversed(executions)),
        logs=runtime.logs(agent_id, limit=50),
        conversations=conversations,
        deployments=rollouts,
        charts=charts(runs(runtime, ns, agent_id)),
    )


async def _deployments(writes: Writes, ns: str, agent_id: str) -> list[DeploymentView] | None:
    """The agent's deployments, newest first; None while the deployment service does not
    answer (the page says so rather than failing whole)."""
    command = ListDeployments(namespace=ns, agent_id=agent_id)
    try:
        reply = await writes.send(SERVICE, "list_deployments", command, DeploymentReply, views=())
    except ParleyError:
        return None
    return reply.deployments or []


@get("/conversations/{conversation_id:str}")
async def conversation(
    console: NamedDependency[Console], conversation_id: FromPath[str]
) -> Response[str]:
    """A conversation's messages as a sequence diagram and a table."""
    ns, messages = console.ns, console.edge.messages
    position = await console.caught_up(messages)
    found = [m for _, m in messages.history(ns, conversation_id=conversation_id)]
    if not found:
        raise ParleyError(ErrorCode.NOT_FOUND, f"no conversation {conversation_id[:80]!r}")
    names = _names(console.edge.agents, ns, _parties(found))
    return html(
        "conversation.html",
        position,
        conversation_id=conversation_id,
        messages=found,
        names=names,
        diagram=sequence_diagram(found, names),
    )


def _names(agents: AgentsProjection, ns: str, ids: Iterable[str]) -> dict[str, str]:
    """Agent id → name, for the ids that are agents of ``ns``."""
    return {i: view.spec.name for i in set(ids) if (view := agents.get(ns, i)) is not None}


def _parties(found: list[AclMessage]) -> list[str]:
    return [who for m in found for who in (m.sender, *m.receivers)]


@get("/tasks/{task_id:str}")
async def task(console: NamedDependency[Console], task_id: FromPath[str]) -> Response[str]:
    """A Contract Net round: the cfp, the bids with their scores, the award, re-awards."""
    ns, tasks = console.ns, console.edge.tasks
    position = await console.caught_up(tasks)
    found = tasks.task(ns, task_id) if ID.match(task_id) else None
    if found is None:
        raise ParleyError(ErrorCode.TASK_NOT_FOUND, f"no task {task_id[:80]!r} in {ns}")
    bidders = (p.agent_id for p in found.proposals)
    names = _names(console.edge.agents, ns, [*found.participants, *found.candidates, *bidders])
    return html("task.html", position, task=found, scores=bid_scores(found), names=names)


@get("/deployments/{deployment_id:str}")
async def deployment(
    console: NamedDependency[Console], deployment_id: FromPath[str]
) -> Response[str]:
    """A deployment: its stages, the traffic split, its health and why it ended; charts of
    the split by stage and of the agent's runs since it started."""
    ns, store, runtime = console.ns, console.edge.store, console.edge.runtime
    await console.caught_up(runtime)  # the runs charted include the event that woke the page
    state, position = None, await store.last_position()
    if ID.match(deployment_id):
        state = fold(await store.read(deployment_stream(ns, deployment_id)), evolve_deployment)
    if state is None or state.state is None or state.state.namespace != ns:
        raise ParleyError(
            ErrorCode.DEPLOYMENT_NOT_FOUND, f"no deployment {deployment_id[:80]!r} in {ns}"
        )
    shown = deployment_view(state.state)
    since = [r for r in runs(runtime, ns, shown.agent_id) if r.time >= shown.created_at]
    split = [float(s.percentage) for s in shown.stages if s.started_at is not None]
    if shown.status == "rolled_back":
        split.append(0.0)
    over_time = [spark(split, "traffic to the new version (%)"), *charts(since)]
    return html("deployment.html", position, deployment=shown, charts=over_time)


view_router = Router(
    "/api/v1/console",
    route_handlers=[fleet, fleet_rows, agent, conversation, task, deployment],
    dependencies={"console": Provide(Console, sync_to_thread=False)},
    include_in_schema=False,
)
