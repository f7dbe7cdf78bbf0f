"""The new version's health of each deployment, measured from the ends of its runs.

The runtime records on every run it routes to a deployment's new definition the
deployment's id (``deployment_id`` on ``turn.*`` and ``execution.*`` ends, with the run's
``response_time_ms``). :class:`HealthWatch` folds those ends, read from the store by the
board, into a :class:`~parley.aggregates.version_health.Window` per deployment: completed
runs are successes; failed and interrupted ones are errors; cancelled ones are not judged.
"""

from parley.aggregates.version_health import Window
from parley.contracts.deployments import Health
from parley.contracts.envelope import Event

__all__ = ["RUN_ENDS", "HealthWatch"]

RUN_ENDS: dict[str, bool] = {
    "turn.completed": True,
    "turn.failed": False,
    "turn.interrupted": False,
    "execution.completed": True,
    "execution.failed": False,
}
"""The run ends a version is judged on, and whether each is a success."""
WINDOW_S = 300.0
"""How far back the runs judged go (by their recorded time)."""

Key = tuple[str, str]
"""(namespace, deployment id)."""


class HealthWatch:
    """Each deployment's new version: runs, errors and latency p99 over the window."""

    def __init__(self, span_s: float = WINDOW_S) -> None:
        self.window: Window[Key] = Window(span_s)

    def observe(self, event: Event) -> Key | None:
        """Fold a run's end on a deployment's new definition; that deployment, if so."""
        ok = RUN_ENDS.get(event.type)
        deployment_id = event.data.get("deployment_id") if ok is not None else None
        if ok is None or not isinstance(deployment_id, str):
            return None
        key = (event.namespace, deployment_id)
        latency = float(event.data.get("response_time_ms") or 0.0)
        self.window.add(key, ok, latency, at=event.time.timestamp())
        return key

    def of(self, key: Key) -> Health | None:
        """What was measured of the deployment's new version (None before any run)."""
        health = self.window.health(key)
        return health if health.samples else None

    def forget(self, key: Key) -> None:
        """The deployment ended: drop its runs."""
        self.window.forget(key)
