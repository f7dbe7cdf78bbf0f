"""The deployment strategies as steps, and the judgement of a new version: pure rules.

Every strategy is a list of *steps* (:class:`~parley.contracts.deployments.Stage`: the new
version's share of traffic, and how long it holds before the next), so the deployment
aggregate runs them all the same way — each step's end is the state's due time, which the
board arms — and the router reads one percentage:

- ``immediate``: no step (promoted at once);
- ``canary``: its stages;
- ``rolling``: one step per batch, the share being the instances moved over the instances
  (a cluster's agents over its agents), ``batch_pause_s`` apart; the last batch promotes;
- ``blue_green``: the new version beside the old at 0 % for ``warmup_s``, then 100 % at once
  for ``rollback_window_s`` (a rollback then switches back), then promoted.

:func:`check_rollout` refuses parameters that make no rollout (422 with every field);
:func:`verdict` says why measured figures are past the thresholds.
"""

from parley.contracts.deployments import BatchStarted
from parley.contracts.deployments import DeploymentCreated
from parley.contracts.deployments import Health
from parley.contracts.deployments import Rollout
from parley.contracts.deployments import Stage
from parley.contracts.deployments import StageStarted
from parley.contracts.deployments import Strategy
from parley.contracts.deployments import Switched
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError

__all__ = [
    "BATCH_PAUSE_S",
    "ROLLBACK_WINDOW_S",
    "batch_agents",
    "check_rollout",
    "moved",
    "step_event",
    "steps",
    "verdict",
]

BATCH_PAUSE_S = 60.0
"""A rolling deployment's pause after each batch when none is given."""
ROLLBACK_WINDOW_S = 300.0
"""How long a blue-green deployment keeps the old version when no window is given."""

_TAKES: dict[Strategy, frozenset[str]] = {
    "immediate": frozenset(),
    "canary": frozenset({"stages"}),
    "rolling": frozenset({"batch_size", "batch_pause_s"}),
    "blue_green": frozenset({"warmup_s", "rollback_window_s"}),
}
"""The strategy's own parameters; another strategy's is refused."""
_NEEDS: dict[Strategy, str] = {"canary": "stages", "rolling": "batch_size"}


def check_rollout(rollout: Rollout, *, cluster: bool = False) -> None:
    """Whether ``rollout`` makes a rollout: each strategy takes its own parameters only, a
    canary's stages rise, a rolling deployment has a ``batch_size``, a cluster rolls.

    Raises:
        ParleyError: ``VALIDATION_ERROR`` with one field error per wrong field.
    """
    strategy = rollout.strategy
    errors: list[dict[str, str]] = []
    for name in ("stages", "batch_size", "batch_pause_s", "warmup_s", "rollback_window_s"):
        given = getattr(rollout, name) not in (None, [])
        if given and name not in _TAKES[strategy]:
            errors.append(_error(name, f"a {strategy} deployment takes no {name}"))
        elif not given and _NEEDS.get(strategy) == name:
            errors.append(_error(name, f"a {strategy} deployment needs {name}"))
    percentages = [s.percentage for s in rollout.stages]
    if any(b <= a for a, b in zip(percentages, percentages[1:], strict=False)):
        errors.append(_error("stages", "percentages must rise from stage to stage"))
    if cluster and strategy != "rolling":
        errors.append(_error("strategy", "a cluster's template rolls out with `rolling`"))
    if errors:
        messages = "; ".join(e["message"] for e in errors)
        raise ParleyError(ErrorCode.VALIDATION_ERROR, f"invalid rollout: {messages}", errors)


def _error(name: str, message: str) -> dict[str, str]:
    return {"field": f"body.{name}", "message": message}


def steps(created: DeploymentCreated) -> tuple[Stage, ...]:
    """The deployment's steps, in order (see the module's docstring)."""
    if created.strategy == "canary":
        return tuple(created.stages)
    if created.strategy == "blue_green":
        window = created.rollback_window_s
        return (
            Stage(percentage=0, duration_s=created.warmup_s or 0.0),
            Stage(percentage=100, duration_s=ROLLBACK_WINDOW_S if window is None else window),
        )
    if created.strategy == "rolling":
        count = _batches(created)
        pause = BATCH_PAUSE_S if created.batch_pause_s is None else created.batch_pause_s
        instances = max(created.instances, 1)
        return tuple(
            Stage(
                percentage=moved(created, k) * 100 // instances,
                duration_s=pause if k < count - 1 else 0.0,
            )
            for k in range(count)
        )
    return ()


def _batches(created: DeploymentCreated) -> int:
    size = created.batch_size or 1
    return -(-max(created.instances, 1) // size)


def moved(created: DeploymentCreated, batch: int) -> int:
    """Instances on the new version once batch ``batch`` (from 0) started."""
    return min((batch + 1) * (created.batch_size or 1), max(created.instances, 1))


def batch_agents(created: DeploymentCreated, batch: int) -> list[str]:
    """A cluster's agents that batch ``batch`` moves (none for one agent's deployment)."""
    size = created.batch_size or 1
    return created.agent_ids[batch * size : (batch + 1) * size]


def step_event(created: DeploymentCreated, stage: int) -> tuple[str, StageStarted]:
    """The event that starts step ``stage``: a batch, the blue-green switch, or a stage."""
    step = steps(created)[stage]
    ident, percentage = created.deployment_id, step.percentage
    if created.strategy == "rolling":
        batch = BatchStarted(
            deployment_id=ident,
            stage=stage,
            percentage=percentage,
            moved=moved(created, stage),
            instances=max(created.instances, 1),
            agent_ids=batch_agents(created, stage),
        )
        return "deployment.batch_started", batch
    if created.strategy == "blue_green" and percentage == 100:
        switched = Switched(
            deployment_id=ident, stage=stage, percentage=100, rollback_window_s=step.duration_s
        )
        return "deployment.switched", switched
    return "deployment.stage_started", StageStarted(
        deployment_id=ident, stage=stage, percentage=percentage
    )


def verdict(rollout: Rollout, health: Health | None) -> str | None:
    """Why ``health`` rolls the deployment back (the figures and thresholds), or None when it
    is healthy, has fewer than ``min_samples`` turns, or rollback on error is off."""
    if not rollout.rollback_on_error or health is None or health.samples < rollout.min_samples:
        return None
    turns = f"over {health.samples} turns"
    found: list[str] = []
    if health.error_rate > rollout.error_threshold:
        found.append(
            f"error rate {health.error_rate:.1%} {turns} is above the threshold of"
            f" {rollout.error_threshold:.1%}"
        )
    limit, p99 = rollout.latency_p99_ms, health.p99_ms
    if limit is not None and p99 is not None and p99 > limit:
        found.append(f"latency p99 {p99:.0f} ms {turns} is above the threshold of {limit:.0f} ms")
    return "; ".join(found) or None
