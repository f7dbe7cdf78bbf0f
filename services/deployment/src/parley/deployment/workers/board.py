"""The board: every deployment folded from the store, and a timer for each active one.

Every deployment process follows the ``deployment-*`` streams from position 0, so a process
that starts — after a crash, or beside another — re-arms every running stage's timer from the
events, and a stage whose time passed while no process ran is due at once. A promoted
deployment (``applying``) is due at once too: its definition goes to the registry. Two
processes firing for one transition are safe: the decision appends at the stream's expected
version, so only one of them records it.

The board also measures each rolling-out deployment's new version from the ends of the runs
routed to it (:class:`~parley.deployment.workers.health.HealthWatch`), read from the session and
execution streams only while some deployment is active. Every transition is
judged on those figures, and a run's end that makes them unhealthy (the aggregate's
:func:`~parley.aggregates.deployment.unhealthy`) is judged at once rather than at the end of
the stage: the rollback follows the threshold's crossing by the time the feed takes.
"""

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine

from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment import evolve
from parley.aggregates.deployment import unhealthy
from parley.contracts.deployments import Health
from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.deployment.workers.health import HealthWatch
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["Board", "OnDue"]

log = logging.getLogger(__name__)

OnDue = Callable[[str, str, Health | None], Awaitable[None]]
"""Called with the namespace and id of a deployment whose next transition is due (or that
looks unhealthy), and what was measured of its new version."""

_EPSILON_S = 0.005
"""Timers fire this much after the due time (loop timers may run a little early)."""
_RETRY_S = 1.0
"""A transition that failed (e.g. the registry was down) is tried again this much later."""


class Board(Follower):
    """Deployments by (namespace, id), with one timer per active deployment."""

    name = "deployment-board"
    categories = ("deployment",)

    def __init__(self, store: EventStore, on_due: OnDue) -> None:
        super().__init__(store)
        self.on_due = on_due
        self._all: dict[tuple[str, str], Deployment] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._firing: set[asyncio.Task[None]] = set()
        self.health = HealthWatch()
        self._judging: set[tuple[str, str]] = set()
        self._since: dict[tuple[str, str], int] = {}
        """Each active deployment, and the position from which it was active."""
        self._runs: _RunEnds | None = None

    def fold(self, event: Event) -> None:
        """Fold a deployment event and (re-)arm or drop its timer; read the runs' ends while
        any deployment is active."""
        key = (event.namespace, event.subject)
        state = evolve(self._all.get(key), event)
        if state is None:
            return
        self._all[key] = state
        if state.active:
            self._since.setdefault(key, event.position)
        else:
            self._since.pop(key, None)
            self.health.forget(key)
        self.arm(state)
        self._follow_runs()

    def _follow_runs(self) -> None:
        """Read the ends of runs (session and execution streams) only while a deployment is
        active, from where the first of them became active: the rest of the time this
        process reads no chat turn and no execution."""
        if self._since and self._runs is None:
            self._runs = _RunEnds(self.store, self._measure)
            self._start(self._runs.start(after=min(self._since.values())))
        elif not self._since and self._runs is not None:
            runs, self._runs = self._runs, None
            self._start(runs.stop())

    def _measure(self, event: Event) -> None:
        """Fold a run's end on a deployment's new version; judge it now if unhealthy."""
        key = self.health.observe(event)
        if key is None:
            return
        state = self._all.get(key)
        if state is None or not state.active:
            self.health.forget(key)
            return
        if (
            state.status == "rolling_out"
            and key not in self._judging
            and unhealthy(state, self.health.of(key))
        ):
            self._judging.add(key)
            self._start(self._judge(key))

    def deployments(self, namespace: str) -> list[Deployment]:
        """Every deployment of ``namespace``, newest first."""
        found = [d for (ns, _), d in self._all.items() if ns == namespace]
        return sorted(found, key=lambda d: d.created_at, reverse=True)

    def arm(self, state: Deployment, delay: float | None = None) -> None:
        """Time the deployment's next transition (none once it is finished or paused)."""
        key = (state.namespace, state.id)
        if (old := self._timers.pop(key, None)) is not None:
            old.cancel()
        if state.status == "applying":
            due_in = 0.0
        elif state.status == "rolling_out" and state.due_at is not None:
            due_in = (state.due_at - utcnow()).total_seconds() + _EPSILON_S
        else:
            return
        wait = max(due_in, 0.0) if delay is None else delay
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(wait, self._fire, key)

    def _fire(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        self._start(self._due(key))

    def _start(self, transition: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(transition)
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    async def _judge(self, key: tuple[str, str]) -> None:
        """Judge an unhealthy-looking deployment now (its stage timer stays armed)."""
        try:
            await self.on_due(*key, self.health.of(key))
        except Exception:
            log.exception("deployment %s/%s: judging its health failed", *key)
        finally:
            self._judging.discard(key)

    async def _due(self, key: tuple[str, str]) -> None:
        try:
            await self.on_due(*key, self.health.of(key))
        except Exception:
            log.exception("deployment %s/%s: transition failed; retrying in %ss", *key, _RETRY_S)
            if (state := self._all.get(key)) is not None and state.active:
                self.arm(state, _RETRY_S)

    async def stop(self) -> None:
        """Stop following and cancel every timer and running transition."""
        await super().stop()
        if self._runs is not None:
            await self._runs.stop()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._firing):
            task.cancel()
        if self._firing:
            await asyncio.gather(*self._firing, return_exceptions=True)


class _RunEnds(Follower):
    """The ends of runs, read while some deployment is active, for its health."""

    name = "deployment-runs"
    categories = ("session", "execution")

    def __init__(self, store: EventStore, measure: Callable[[Event], None]) -> None:
        super().__init__(store)
        self._measure = measure

    def fold(self, event: Event) -> None:
        """Measure a run's end (other events of these streams pass)."""
        self._measure(event)
