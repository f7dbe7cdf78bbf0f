"""The board: every deployment folded from the store, and a timer for each active one.

Every deployment process follows the ``deployment-*`` streams from position 0, so a process
that starts — after a crash, or beside another — re-arms every running stage's timer from the
events, and a stage whose time passed while no process ran is due at once. A promoted
deployment (``applying``) is due at once too: its definition goes to the registry. Two
processes firing for one transition are safe: the decision appends at the stream's expected
version, so only one of them records it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from parley.aggregates.deployment import Deployment, evolve
from parley.contracts.envelope import Event, utcnow
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower

__all__ = ["Board", "OnDue"]

log = logging.getLogger(__name__)

OnDue = Callable[[str, str], Awaitable[None]]
"""Called with the namespace and id of a deployment whose next transition is due."""

_EPSILON_S = 0.005
"""Timers fire this much after the due time (loop timers may run a little early)."""
_RETRY_S = 1.0
"""A transition that failed (e.g. the registry was down) is tried again this much later."""


class Board(Follower):
    """Deployments by (namespace, id), with one timer per active deployment."""

    name = "deployment-board"

    def __init__(self, store: EventStore, on_due: OnDue) -> None:
        super().__init__(store)
        self.on_due = on_due
        self._all: dict[tuple[str, str], Deployment] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._firing: set[asyncio.Task[None]] = set()

    def fold(self, event: Event) -> None:
        """Fold a deployment event and (re-)arm or drop its timer; skip the rest.

        Every category is read (not only ``deployment``), so the position reaches the store's
        end at start even when the newest event is another service's.
        """
        if not event.stream.startswith("deployment-"):
            return
        key = (event.namespace, event.subject)
        state = evolve(self._all.get(key), event)
        if state is None:
            return
        self._all[key] = state
        self.arm(state)

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
        task = asyncio.create_task(self._due(key))
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    async def _due(self, key: tuple[str, str]) -> None:
        try:
            await self.on_due(*key)
        except Exception:
            log.exception("deployment %s/%s: transition failed; retrying in %ss", *key, _RETRY_S)
            if (state := self._all.get(key)) is not None and state.active:
                self.arm(state, _RETRY_S)

    async def stop(self) -> None:
        """Stop following and cancel every timer and running transition."""
        await super().stop()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._firing):
            task.cancel()
        if self._firing:
            await asyncio.gather(*self._firing, return_exceptions=True)
