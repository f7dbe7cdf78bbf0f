"""The deployment service's command table: create, act on (promote, pause, resume, roll
back) and list deployments; and the transitions the board times (:meth:`Deployments.on_due`).

A create checks everything before anything is recorded (the rollout's parameters, the
definition, the agent), claims the agent's slot (one active deployment per agent, or per
cluster), then records the deployment. Every transition is a command on the deployment's
stream through its aggregate; a promoted deployment's definition then goes to the registry
(:meth:`Deployments.apply`). A cluster's deployment gives each agent of a batch, once the
batch started, a deployment of its own (:meth:`Deployments.cascade`), and once they all
completed the cluster its new template. Every exception becomes
an error reply in one place (:func:`reply_error`).
"""

import logging
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import msgspec
from nats.aio.client import Client

from parley.aggregates import agent
from parley.aggregates import deployment
from parley.aggregates import deployment_slot
from parley.aggregates.agent_spec import validate_spec
from parley.aggregates.cluster import member_spec
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.decision import to_new_events
from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment import DeploymentCommand
from parley.aggregates.deployment_strategies import batch_agents
from parley.aggregates.deployment_strategies import check_rollout
from parley.aggregates.deployment_view import view
from parley.contracts import subjects
from parley.contracts.clusters import ChangeClusterTemplate
from parley.contracts.commands import Reply
from parley.contracts.commands import Strict
from parley.contracts.deployments import CreateDeployment
from parley.contracts.deployments import DeploymentAction
from parley.contracts.deployments import DeploymentCreated
from parley.contracts.deployments import DeploymentReply
from parley.contracts.deployments import Health
from parley.contracts.deployments import ListDeployments
from parley.contracts.deployments import Rollout
from parley.contracts.deployments import cluster_slot_stream
from parley.contracts.deployments import deployment_stream
from parley.contracts.deployments import slot_stream
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.registry import CommandReply
from parley.contracts.registry import UpdateAgent
from parley.contracts.registry import agent_stream
from parley.deployment.domain import SOURCE
from parley.deployment.domain import child_id
from parley.deployment.domain import cluster_outcome
from parley.deployment.domain import final_refusal
from parley.deployment.domain import holds_slot
from parley.deployment.domain import patch_for
from parley.deployment.settings import DeploymentSettings
from parley.deployment.workers.board import Board
from parley.eventstore import EventStore
from parley.eventstore.repository import Outcome
from parley.eventstore.repository import Repository
from parley.kit.app import Route
from parley.kit.errors import error_body_for
from parley.kit.telemetry import inject

__all__ = ["ROUTES", "Deployments", "reply_error"]

log = logging.getLogger(__name__)

_BOARD_WAIT_S = 2.0
S = TypeVar("S")
C = TypeVar("C")
_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(CommandReply).decode
_UNTIL_IT_ENDS = frozenset({ErrorCode.SCALING_IN_PROGRESS})
"""Refusals of a template change to try again: a resize of the cluster is under way."""


class Deployments:
    """The process's command handlers, built once its connections are open."""

    def __init__(
        self, store: EventStore, nc: Client, board: Board, settings: DeploymentSettings
    ) -> None:
        self.store, self.nc, self.settings = store, nc, settings
        self.board = board
        self.deployments = Repository[Deployment](store, deployment.evolve)
        self.slots = Repository[deployment_slot.Slot](store, deployment_slot.evolve)
        self.agents = Repository[agent.Agent](store, agent.evolve, cache_size=0)

    async def create_deployment(self, cmd: CreateDeployment) -> DeploymentReply:
        """Check, claim the agent's (or cluster's) slot, record the deployment (an immediate
        one applies, a cluster's first batch starts its agents' deployments)."""
        if (cmd.agent_id is None) == (cmd.cluster is None):
            raise _invalid("body.agent_id", "name an `agent_id` or a `cluster`, not both")
        check_rollout(cmd.rollout, cluster=cmd.cluster is not None)
        validate_spec(cmd.spec)
        deployment_id = cmd.deployment_id or new_id()
        if cmd.agent_id is not None:
            current = await self._agent(cmd.namespace, cmd.agent_id)
            from_version, instances = current.version, current.spec.instances
            target, slot = cmd.agent_id, slot_stream(cmd.namespace, cmd.agent_id)
        else:
            if not cmd.agent_ids:
                raise _invalid("body.cluster", f"cluster {cmd.cluster} has no agents")
            from_version, instances = 0, len(cmd.agent_ids)
            target = f"cluster/{cmd.cluster}"
            slot = cluster_slot_stream(cmd.namespace, cmd.cluster or "")
        await self._claim(cmd.namespace, target, deployment_id, slot)
        created = DeploymentCreated(
            **msgspec.structs.asdict(cmd.rollout),
            from_version=from_version,
            instances=instances,
            deployment_id=deployment_id,
            agent_id=cmd.agent_id or "",
            spec=cmd.spec,
            version_label=cmd.version_label,
            cluster=cmd.cluster,
            agent_ids=cmd.agent_ids,
        )
        outcome = await self._decide(
            cmd.namespace, deployment_id, deployment.Create(created=created)
        )
        return await self._settle(outcome)

    async def deployment_action(self, cmd: DeploymentAction) -> DeploymentReply:
        """Promote, pause, resume or roll back by hand."""
        await self._visible(cmd.namespace, cmd.deployment_id)
        action = deployment.Action(action=cmd.action, reason=cmd.reason)
        return await self._settle(await self._decide(cmd.namespace, cmd.deployment_id, action))

    async def list_deployments(self, cmd: ListDeployments) -> DeploymentReply:
        """The namespace's deployments as this process's board has them (caught up first),
        each with its new version's figures as the board measures them now."""
        await self.board.wait_for(await self.store.last_position(), _BOARD_WAIT_S)
        found = [
            view(d, self._measured(d))
            for d in self.board.deployments(cmd.namespace)
            if (cmd.agent_id is None or d.agent_id == cmd.agent_id)
            and (cmd.status is None or d.status == cmd.status)
            and (cmd.deployment_id is None or d.id == cmd.deployment_id)
        ]
        return DeploymentReply(ok=True, deployments=found)

    def _measured(self, state: Deployment) -> dict[str, Health] | None:
        """The new version's figures measured now (None: none yet, show those judged)."""
        health = self.board.health.of((state.namespace, state.id)) if state.active else None
        return None if health is None else {"new": health}

    async def on_due(
        self, namespace: str, deployment_id: str, health: Health | None = None
    ) -> None:
        """The board's timer: judge (on the new version's ``health``) and advance the
        deployment, apply it once promoted."""
        tick = deployment.Tick(health=health)
        outcome = await self._decide(namespace, deployment_id, tick)
        await self._settle(outcome)

    async def apply(self, state: Deployment) -> Outcome[Deployment]:
        """Give the registry the promoted definition; record it completed (or failed).

        A cluster's deployment has given its agents the definition batch by batch: it is
        complete once their deployments are (failed if one failed), and the cluster's
        template is then the new one (recorded first, so later agents are made from it).

        Raises:
            ParleyError: the registry did not answer, or an agent's deployment is still
                applying (the board tries again).
        """
        if state.rollout.cluster is not None:
            await self.cascade(state)
            children = [await self._load(state.namespace, c) for c in self._children(state)]
            verdict = cluster_outcome(children)
            if verdict is None:
                raise ParleyError(ErrorCode.SERVICE_UNAVAILABLE, "its agents are still applying")
            if isinstance(verdict, deployment.Complete):
                await self._change_template(state)
            return await self._decide(state.namespace, state.id, verdict)
        current = await self._find_agent(state.namespace, state.agent_id)
        if current is None:
            done: DeploymentCommand = deployment.Fail(reason=f"agent {state.agent_id} is gone")
            return await self._decide(state.namespace, state.id, done)
        update = UpdateAgent(
            namespace=state.namespace,
            agent_id=state.agent_id,
            patch=patch_for(current.spec, state.spec),
            request_id=f"deployment-{state.id}",
        )
        reply = await self._ask_registry("update_agent", update)
        if reply.ok:
            done = deployment.Complete(agent_version=reply.version)
        elif final_refusal(reply.error):
            assert reply.error is not None
            done = deployment.Fail(reason=f"{reply.error.code}: {reply.error.message}")
        else:
            raise ParleyError(ErrorCode.SERVICE_UNAVAILABLE, "the registry is unavailable")
        return await self._decide(state.namespace, state.id, done)

    # --- helpers ---------------------------------------------------------------------------

    async def _change_template(self, state: Deployment) -> None:
        """Have the registry record the cluster deployment's template on the cluster (the
        same again records nothing; a cluster gone has nothing to record).

        Raises:
            ParleyError: the registry did not take it yet (the board tries again).
        """
        change = ChangeClusterTemplate(
            namespace=state.namespace,
            name=state.rollout.cluster or "",
            spec=state.spec,
            deployment_id=state.id,
            request_id=f"deployment-{state.id}",
        )
        reply = await self._ask_registry("change_cluster_template", change)
        if reply.ok:
            return
        error = reply.error
        if error is None or not final_refusal(error) or error.code in _UNTIL_IT_ENDS:
            raise ParleyError(ErrorCode.SERVICE_UNAVAILABLE, "the cluster's template waits")
        log.warning("deployment %s: the cluster kept its template: %s", state.id, error.message)

    async def _ask_registry(self, verb: str, command: Strict) -> Reply:
        """The registry's reply to ``command``.

        Raises:
            ParleyError: ``SERVICE_UNAVAILABLE`` when it did not answer, or unreadably.
        """
        try:
            msg = await self.nc.request(
                subjects.cmd("registry", verb),
                _encode(command),
                timeout=self.settings.deployment_apply_timeout,
                headers=inject(),
            )
            return _decode_reply(msg.data)
        except Exception as exc:  # nats errors (timeout, no responders), an unreadable reply
            raise ParleyError(
                ErrorCode.SERVICE_UNAVAILABLE, f"the registry did not take it: {exc!r}"
            ) from None

    async def cascade(self, state: Deployment) -> None:
        """Start the deployment of each agent of a cluster's started batches (once each: its
        id is derived from the cluster's deployment and the agent, and one that exists is
        left alone); an agent that is gone is skipped.

        Raises:
            ParleyError: an agent's deployment could not start yet (the board tries again).
        """
        for agent_id in self._moved(state):
            child = child_id(state.id, agent_id)
            if await self._load(state.namespace, child) is not None:
                continue
            current = await self._find_agent(state.namespace, agent_id)
            if current is None:
                continue
            command = CreateDeployment(
                namespace=state.namespace,
                agent_id=agent_id,
                spec=member_spec(current.spec, state.spec),
                version_label=state.version_label,
                rollout=Rollout(strategy="immediate"),
                deployment_id=child,
            )
            await self.create_deployment(command)

    def _moved(self, state: Deployment) -> list[str]:
        """A cluster's agents its started batches moved (all, once promoted)."""
        if state.status == "applying":
            return list(state.rollout.agent_ids)
        if state.stage is None or not state.active:
            return []
        return [a for k in range(state.stage + 1) for a in batch_agents(state.rollout, k)]

    def _children(self, state: Deployment) -> list[str]:
        return [child_id(state.id, a) for a in state.rollout.agent_ids]

    async def _load(self, namespace: str, deployment_id: str) -> Deployment | None:
        stream = deployment_stream(namespace, deployment_id)
        return (await self.deployments.load(stream, fresh=True)).state

    async def _settle(self, outcome: Outcome[Deployment]) -> DeploymentReply:
        """Start a cluster's moved agents, apply a promoted deployment now; reply with the
        deployment as it stands."""
        state = outcome.state
        rolling = ("rolling_out", "paused")
        if state is not None and state.rollout.cluster is not None and state.status in rolling:
            try:  # (once promoted, applying starts them all, or raises and is tried again)
                await self.cascade(state)
            except ParleyError as exc:  # the next step's Tick, or the promotion, starts it
                log.warning("deployment %s: an agent did not start yet: %s", state.id, exc.message)
        if state is not None and state.status == "applying":
            # as stored, not as cached: a stale copy must not apply over a later change
            stream = deployment_stream(state.namespace, state.id)
            loaded = await self.deployments.load(stream, fresh=True)
            outcome = Outcome(loaded.state, loaded.version, loaded.position, 0)
            state = loaded.state
        if state is not None and state.status == "applying":
            try:
                outcome = await self.apply(state)
            except ParleyError as exc:  # stays applying: the board tries again
                log.warning("deployment %s not applied yet: %s", state.id, exc.message)
                self.board.arm(state, 1.0)
            state = outcome.state
        if state is None:  # pragma: no cover - every command here makes or finds one
            raise RuntimeError("a deployment command left no state")
        return DeploymentReply(
            ok=True,
            deployment=view(state),
            version=outcome.version,
            position=outcome.position,
        )

    async def _decide(
        self, namespace: str, deployment_id: str, command: DeploymentCommand
    ) -> Outcome[Deployment]:
        stream = deployment_stream(namespace, deployment_id)
        decide = _deciding(deployment.decide, command, deployment_id, namespace)
        return await self.deployments.execute(stream, decide)

    async def _claim(self, namespace: str, target: str, deployment_id: str, stream: str) -> None:
        """Hold the agent's (or cluster's) slot, on ``stream``, for ``deployment_id``.

        Raises:
            ParleyError: ``DEPLOYMENT_IN_PROGRESS`` while another deployment is active.
        """
        slot = (await self.slots.load(stream, fresh=True)).state
        holder = None
        if slot is not None and slot.holder != deployment_id:
            held = deployment_stream(namespace, slot.holder)
            holder = (await self.deployments.load(held, fresh=True)).state
        claim = deployment_slot.Claim(
            agent_id=target,
            deployment_id=deployment_id,
            seen_holder=slot.holder if slot is not None else None,
            holder_active=holds_slot(slot, holder, utcnow()),
        )
        decide = _deciding(deployment_slot.decide, claim, target, namespace)
        await self.slots.execute(stream, decide)

    async def _find_agent(self, namespace: str, agent_id: str) -> agent.Agent | None:
        """The live agent ``agent_id`` of ``namespace``, read from its stream."""
        found = (await self.agents.load(agent_stream(agent_id), fresh=True)).state
        if found is None or found.deleted or found.namespace != namespace:
            return None
        return found

    async def _agent(self, namespace: str, agent_id: str) -> agent.Agent:
        found = await self._find_agent(namespace, agent_id)
        if found is None:
            raise _not_found(ErrorCode.AGENT_NOT_FOUND, "agent", agent_id, namespace)
        return found

    async def _visible(self, namespace: str, deployment_id: str) -> Deployment:
        found = await self._load(namespace, deployment_id)
        if found is None or found.namespace != namespace:
            raise _not_found(ErrorCode.DEPLOYMENT_NOT_FOUND, "deployment", deployment_id, namespace)
        return found


def _not_found(code: ErrorCode, kind: str, ident: str, namespace: str) -> ParleyError:
    """No ``kind`` ``ident`` in ``namespace`` (details ``{"<kind>_id": ident}``)."""
    return ParleyError(code, f"no {kind} {ident} in namespace {namespace}", {f"{kind}_id": ident})


def _invalid(field: str, message: str) -> ParleyError:
    return ParleyError(
        ErrorCode.VALIDATION_ERROR,
        f"invalid {field}: {message}",
        [{"field": field, "message": message}],
    )


def _deciding(
    decider: Callable[[S | None, C, Context], Decision[Any]],
    command: C,
    subject: str,
    namespace: str,
) -> Callable[[S | None], list[NewEvent]]:
    """The repository's decide: ``command`` through ``decider``, as envelopes to append."""

    def decide(state: S | None) -> list[NewEvent]:
        ctx = Context(now=utcnow())
        events = decider(state, command, ctx).events
        return to_new_events(
            events, subject=subject, namespace=namespace, source=SOURCE, now=ctx.now
        )

    return decide


def reply_error(exc: Exception) -> DeploymentReply:
    """The error reply for an exception raised decoding or handling a command."""
    return DeploymentReply(ok=False, error=error_body_for(exc, log=log))


ROUTES: dict[str, Route[Deployments]] = {
    "create_deployment": (CreateDeployment, Deployments.create_deployment),
    "deployment_action": (DeploymentAction, Deployments.deployment_action),
    "list_deployments": (ListDeployments, Deployments.list_deployments),
}
"""Verb → (command type, handler)."""
