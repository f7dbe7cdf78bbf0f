"""A deployment, folded from its stream ``deployment-<id>``, and its decider.

The deployment service decides with :func:`decide`; the edge shows
:func:`~parley.aggregates.deployment_view.view` of what :func:`evolve` folds. Pure: time comes
in through :class:`~parley.aggregates.decision.Context` and the new version's measured health
comes in with each :class:`Tick`, so a transition is a command on the stream and two
processes timing the same step append it once (the loser's append conflicts, it reads the
winner's event and decides nothing more).

Lifecycle: ``rolling_out`` (the strategy's steps — canary stages, rolling batches, the
blue-green phases — each ``percentage`` for ``duration_s``, see
:mod:`parley.aggregates.deployment_strategies`) ⇄ ``paused`` → ``applying`` (promoted: every
turn on the new definition, which the service now gives the registry) → ``completed`` |
``failed``; from any active status, ``rolled_back``.
"""

import hashlib
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.deployment_strategies import check_rollout
from parley.aggregates.deployment_strategies import step_event
from parley.aggregates.deployment_strategies import steps
from parley.aggregates.deployment_strategies import verdict
from parley.aggregates.fold import born
from parley.aggregates.fold import kinds
from parley.contracts.deployments import ACTIVE
from parley.contracts.deployments import EVENT_TYPES
from parley.contracts.deployments import DeploymentCompleted
from parley.contracts.deployments import DeploymentCreated
from parley.contracts.deployments import DeploymentFailed
from parley.contracts.deployments import DeploymentPaused
from parley.contracts.deployments import DeploymentPromoted
from parley.contracts.deployments import DeploymentResumed
from parley.contracts.deployments import DeploymentRolledBack
from parley.contracts.deployments import DeploymentStatus
from parley.contracts.deployments import Health
from parley.contracts.deployments import Stage
from parley.contracts.deployments import StageStarted
from parley.contracts.deployments import Strategy
from parley.contracts.deployments import deployment_stream
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec

__all__ = [
    "CATEGORY",
    "FOLDS",
    "Action",
    "Complete",
    "Create",
    "Deployment",
    "DeploymentCommand",
    "Fail",
    "Tick",
    "bucket",
    "decide",
    "evolve",
    "on_new_version",
]

CATEGORY = deployment_stream.category
"""The stream category this aggregate folds (``deployment-<id>``)."""
FOLDS = kinds(EVENT_TYPES, "deployment")
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""
_STEPS = frozenset({"deployment.stage_started", "deployment.batch_started", "deployment.switched"})
"""The events that start a step (all carry a :class:`StageStarted`)."""
_STEP: dict[Strategy, str] = {
    "canary": "stage",
    "rolling": "batch",
    "blue_green": "phase",
    "immediate": "step",
}
"""What a step of each strategy is called (in the reason a deployment was promoted)."""


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    """A deployment as folded from its stream."""

    id: str
    namespace: str
    agent_id: str
    spec: AgentSpec
    version_label: str
    strategy: Strategy
    stages: tuple[Stage, ...]
    """The strategy's steps (canary stages, rolling batches, blue-green phases)."""
    rollout: DeploymentCreated
    """Everything it was created with: the rules it is judged by, a cluster's agents."""
    from_version: int
    status: DeploymentStatus
    stage: int | None = None
    """Index of the running step."""
    stage_times: tuple[tuple[datetime | None, datetime | None], ...] = ()
    """(started, ended) of each step."""
    due_at: datetime | None = None
    """When the running step's time is up (None while paused or outside a step)."""
    remaining_s: float = 0.0
    """The paused step's time left."""
    reason: str | None = None
    health: Health | None = None
    agent_version: int | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @property
    def active(self) -> bool:
        """Holds the agent's slot: rolling out, paused or applying."""
        return self.status in ACTIVE

    @property
    def percentage(self) -> int:
        """Traffic share of the new version now."""
        if self.status in ("applying", "completed"):
            return 100
        if self.status in ("rolled_back", "failed") or self.stage is None:
            return 0
        return self.stages[self.stage].percentage


# --- commands ------------------------------------------------------------------------------


class Create(msgspec.Struct, frozen=True, kw_only=True):
    """Record a deployment (its slot already claimed)."""

    created: DeploymentCreated


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """Judge the deployment at ``ctx.now``: roll back if unhealthy, else advance if due."""

    health: Health | None = None
    """The new version's figures over the window, if any were measured."""


class Action(msgspec.Struct, frozen=True, kw_only=True):
    """A hand's ``promote``, ``pause``, ``resume`` or ``rollback``."""

    action: str
    reason: str = ""


class Complete(msgspec.Struct, frozen=True, kw_only=True):
    """The registry holds the new definition at agent stream version ``agent_version``."""

    agent_version: int


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    """The registry refused the new definition."""

    reason: str


DeploymentCommand = Create | Tick | Action | Complete | Fail


# --- evolve --------------------------------------------------------------------------------


def evolve(state: Deployment | None, event: Event) -> Deployment | None:
    """Fold one recorded event; unknown types only advance the version."""
    if event.type == "deployment.created":
        created = msgspec.convert(event.data, DeploymentCreated)
        return Deployment(
            id=created.deployment_id,
            agent_id=created.agent_id,
            spec=created.spec,
            version_label=created.version_label,
            strategy=created.strategy,
            stages=(plan := steps(created)),
            rollout=created,
            from_version=created.from_version,
            status="rolling_out",
            stage_times=tuple((None, None) for _ in plan),
            updated_at=event.time,
            **born(event),
        )
    if state is None:
        return None
    now = event.time
    change: dict[str, Any] = {"version": event.version, "updated_at": now}
    if event.type in _STEPS:
        started = msgspec.convert(event.data, StageStarted)
        duration = state.stages[started.stage].duration_s
        change.update(
            stage=started.stage,
            due_at=now + timedelta(seconds=duration),
            stage_times=_end_stage(
                _start_stage(state.stage_times, started.stage, now), state.stage, now
            ),
        )
    elif event.type == "deployment.paused":
        left = (state.due_at - now).total_seconds() if state.due_at else 0.0
        change.update(status="paused", due_at=None, remaining_s=max(left, 0.0))
        change["reason"] = msgspec.convert(event.data, DeploymentPaused).reason or None
    elif event.type == "deployment.resumed":
        due = now + timedelta(seconds=state.remaining_s) if state.stage is not None else None
        change.update(status="rolling_out", due_at=due, remaining_s=0.0, reason=None)
    elif event.type == "deployment.promoted":
        promoted = msgspec.convert(event.data, DeploymentPromoted)
        change.update(_leave(state, now), status="applying", reason=promoted.reason or None)
    elif event.type == "deployment.rolled_back":
        back = msgspec.convert(event.data, DeploymentRolledBack)
        change.update(_leave(state, now), status="rolled_back", reason=back.reason)
        if back.health is not None:
            change["health"] = back.health
    elif event.type == "deployment.completed":
        done = msgspec.convert(event.data, DeploymentCompleted)
        change.update(status="completed", agent_version=done.agent_version)
    elif event.type == "deployment.failed":
        change.update(status="failed", reason=msgspec.convert(event.data, DeploymentFailed).reason)
    else:
        del change["updated_at"]
    return msgspec.structs.replace(state, **change)


def _start_stage(
    times: tuple[tuple[datetime | None, datetime | None], ...], stage: int, now: datetime
) -> tuple[tuple[datetime | None, datetime | None], ...]:
    return tuple((now, None) if i == stage else t for i, t in enumerate(times))


def _end_stage(
    times: tuple[tuple[datetime | None, datetime | None], ...], stage: int | None, now: datetime
) -> tuple[tuple[datetime | None, datetime | None], ...]:
    return tuple((t[0], now) if i == stage else t for i, t in enumerate(times))


def _leave(state: Deployment, now: datetime) -> dict[str, Any]:
    """The running stage ends; no stage runs any more."""
    return {
        "stage": None,
        "due_at": None,
        "remaining_s": 0.0,
        "stage_times": _end_stage(state.stage_times, state.stage, now),
    }


# --- decide --------------------------------------------------------------------------------


def decide(state: Deployment | None, command: DeploymentCommand, ctx: Context) -> Decision[Never]:
    """Decide the events a command causes (none when it changes nothing).

    Raises:
        ParleyError: ``DEPLOYMENT_NOT_FOUND`` (no such deployment), ``INVALID_STATE_TRANSITION``
            (e.g. resume of a deployment that is not paused, any action on a finished one),
            ``VALIDATION_ERROR`` (parameters that make no rollout).
    """
    if isinstance(command, Create):
        return Decision(_create(state, command.created))
    if state is None:
        raise ParleyError(ErrorCode.DEPLOYMENT_NOT_FOUND, "no such deployment")
    if isinstance(command, Tick):
        return Decision(_tick(state, command.health, ctx.now))
    if isinstance(command, Action):
        return Decision(_act(state, command))
    if state.status != "applying":  # a late or repeated report: already recorded
        return Decision()
    if isinstance(command, Complete):
        done = DeploymentCompleted(deployment_id=state.id, agent_version=command.agent_version)
        return Decision([("deployment.completed", done)])
    return Decision(
        [("deployment.failed", DeploymentFailed(deployment_id=state.id, reason=command.reason))]
    )


def _create(state: Deployment | None, created: DeploymentCreated) -> Decided:
    if state is not None:
        return []  # a retried create: already recorded
    check_rollout(created, cluster=created.cluster is not None)
    decided: Decided = [("deployment.created", created)]
    if created.strategy == "immediate":
        promoted = DeploymentPromoted(deployment_id=created.deployment_id, reason="immediate")
        return [*decided, ("deployment.promoted", promoted)]
    return [*decided, *_enter(created, 0)]


def _enter(created: DeploymentCreated, stage: int) -> Decided:
    """Start step ``stage``; past the last, or at 100 % with no time to wait, promote."""
    plan = steps(created)
    if stage >= len(plan):
        return [
            (
                "deployment.promoted",
                DeploymentPromoted(
                    deployment_id=created.deployment_id,
                    reason=f"every {_STEP[created.strategy]} passed",
                ),
            )
        ]
    decided: Decided = [step_event(created, stage)]
    if plan[stage].percentage == 100 and plan[stage].duration_s == 0:
        decided += _enter(created, len(plan))
    return decided


def unhealthy(state: Deployment, health: Health | None) -> bool:
    """Whether ``health`` is enough samples past one of the deployment's thresholds."""
    return verdict(state.rollout, health) is not None


def _tick(state: Deployment, health: Health | None, now: datetime) -> Decided:
    if state.status != "rolling_out":
        return []
    reason = verdict(state.rollout, health)
    if reason is not None:
        back = DeploymentRolledBack(
            deployment_id=state.id, reason=reason, automatic=True, health=health
        )
        return [("deployment.rolled_back", back)]
    if state.stage is None or state.due_at is None or state.due_at > now:
        return []
    return _enter(state.rollout, state.stage + 1)


def _act(state: Deployment, command: Action) -> Decided:
    if not state.active:
        raise _refused(state, command.action)
    action, reason = command.action, command.reason
    if action == "rollback":
        back = DeploymentRolledBack(deployment_id=state.id, reason=reason or "rolled back by hand")
        return [("deployment.rolled_back", back)]
    if state.status == "applying":
        if action == "promote":
            return []  # already promoted
        raise _refused(state, action)
    if action == "promote":
        return [
            (
                "deployment.promoted",
                DeploymentPromoted(deployment_id=state.id, reason=reason or "promoted by hand"),
            )
        ]
    if action == "pause":
        if state.status == "paused":
            return []
        return [("deployment.paused", DeploymentPaused(deployment_id=state.id, reason=reason))]
    if action == "resume":
        if state.status == "rolling_out":
            return []
        return [("deployment.resumed", DeploymentResumed(deployment_id=state.id))]
    raise ParleyError(ErrorCode.VALIDATION_ERROR, f"unknown action {action!r}")


def _refused(state: Deployment, action: str) -> ParleyError:
    return ParleyError(
        ErrorCode.INVALID_STATE_TRANSITION,
        f"deployment {state.id} is {state.status}; it cannot {action}",
        {"deployment_id": state.id, "status": state.status, "action": action},
    )


# --- routing -------------------------------------------------------------------------------


def bucket(conversation_id: str) -> int:
    """The conversation's fixed place in 0–99: a stable hash, the same in every process."""
    return int.from_bytes(hashlib.blake2b(conversation_id.encode(), digest_size=8).digest()) % 100


def on_new_version(state: Deployment, conversation_id: str, pinned: bool | None = None) -> bool:
    """Whether a turn of ``conversation_id`` runs on the deployment's new definition.

    ``pinned`` is what the conversation already ran on during this deployment (None: no turn
    yet): a conversation keeps its version while the rollout runs, so it never changes
    mid-way; a new one is on the new version when its :func:`bucket` is below the step's
    percentage, so the share follows the weights. At 100 % (a blue-green switch, the last
    batch, promoted) every turn is on the new version; once rolled back or failed, none is.
    """
    if state.status in ("applying", "completed") or (state.active and state.percentage >= 100):
        return True
    if not state.active:
        return False
    if pinned is not None:
        return pinned
    return bucket(conversation_id) < state.percentage
