"""A deployment as the API shows it: its steps with their times (a rolling deployment's
batches with what each moved, a blue-green deployment's rollback window) and what was
measured of each version. Pure: the state comes folded by :mod:`parley.aggregates.deployment`.
"""

from datetime import datetime

from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment_strategies import batch_agents
from parley.aggregates.deployment_strategies import moved
from parley.contracts.deployments import DeploymentView
from parley.contracts.deployments import Health
from parley.contracts.deployments import StageView
from parley.contracts.deployments import VersionMetrics
from parley.contracts.deployments import WindowView

__all__ = ["metrics", "view"]


_AS_FOLDED = (
    "id",
    "namespace",
    "agent_id",
    "version_label",
    "strategy",
    "status",
    "from_version",
    "agent_version",
    "reason",
    "health",
    "spec",
    "version",
)
"""Fields the view shows as the state holds them."""
_RULES = (
    "rollback_on_error",
    "error_threshold",
    "latency_p99_ms",
    "min_samples",
    "batch_size",
    "cluster",
)
"""Fields the view shows as the deployment was created with them."""


def view(state: Deployment, measured: dict[str, Health] | None = None) -> DeploymentView:
    """The deployment as the API shows it; ``measured`` is each version's health, when known
    (else the new version's figures it was last judged on)."""
    return DeploymentView(
        **{name: getattr(state, name) for name in _AS_FOLDED},
        **{name: getattr(state.rollout, name) for name in _RULES},
        current_stage=state.stage,
        percentage=state.percentage,
        stages=_steps(state),
        instances=max(state.rollout.instances, 1),
        window=_window(state),
        metrics=metrics(measured if measured is not None else _judged(state)),
        created_at=_iso(state.created_at) or "",
        updated_at=_iso(state.updated_at) or "",
    )


def metrics(measured: dict[str, Health]) -> list[VersionMetrics]:
    """Per version (``current``, then ``new``): samples, errors, error and success rate, p99."""
    return [
        VersionMetrics(
            version="current" if name == "current" else "new",
            samples=health.samples,
            errors=health.errors,
            error_rate=round(health.error_rate, 4),
            success_rate=round(1 - health.error_rate, 4) if health.samples else 0.0,
            p99_ms=health.p99_ms,
        )
        for name, health in sorted(measured.items())
        if name in ("current", "new")
    ]


def _judged(state: Deployment) -> dict[str, Health]:
    return {} if state.health is None else {"new": state.health}


def _steps(state: Deployment) -> list[StageView]:
    rolling, rollout = state.strategy == "rolling", state.rollout
    return [
        StageView(
            percentage=step.percentage,
            duration_s=step.duration_s,
            started_at=_iso(started),
            ended_at=_iso(ended),
            moved=moved(rollout, k) if rolling else None,
            agent_ids=batch_agents(rollout, k) if rolling and rollout.cluster else None,
        )
        for k, (step, (started, ended)) in enumerate(
            zip(state.stages, state.stage_times, strict=True)
        )
    ]


def _window(state: Deployment) -> WindowView | None:
    if state.strategy != "blue_green":
        return None
    switched, ended = state.stage_times[-1]
    seconds = state.stages[-1].duration_s
    closes = ended
    if closes is None and switched is not None and state.due_at is not None:
        closes = state.due_at
    return WindowView(rollback_window_s=seconds, opens_at=_iso(switched), closes_at=_iso(closes))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
