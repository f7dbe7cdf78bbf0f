"""The watch: open tasks and runs folded from the store, their timers, and outcome waiters.

Every tasks process follows ``task-*`` and ``grouprun-*`` streams from position 0. Each open
task or run has one timer at its deadline (a round's ``reply-by`` plus the grace, a
contractor's time limit, a run's timeout); when it fires, ``on_due`` decides on the stream
as stored. What it folds it also hands to the service's repositories, so a command on an
open task or run starts from this copy instead of reading the stream. Timers come from
events, not from the process that wrote them, so a restarted process — or any other instance
— re-arms them by catching up, and a deadline that passed while no process ran fires at
once. Two processes firing for one deadline are safe: the decision appends at the expected
version, so only one of them ends the round.
"""

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from parley.aggregates import grouprun
from parley.aggregates import task
from parley.aggregates.task import Task
from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.eventstore import EventStore
from parley.eventstore.follower import Follower
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Repository
from parley.tasks.domain import Kind
from parley.tasks.domain import Streams

__all__ = ["Key", "OnDue", "Watch"]

log = logging.getLogger(__name__)

OnDue = Callable[[Kind, str, str], Awaitable[None]]
"""Called with the kind, id and namespace of a task or run whose deadline passed."""

Key = tuple[str, str]
"""A task or run: (namespace, id) — an id is only unique in its namespace."""

_EPSILON_S = 0.005
"""Timers fire this much after a deadline (loop timers may run a little early)."""
_RECHECK_S = 0.05
_EVOLVE: dict[Kind, Callable[[Any, Event], Any]] = {"task": task.evolve, "run": grouprun.evolve}


class Watch(Follower):
    """Open tasks and runs by namespace and id; finished ones are dropped (their waiters
    answered)."""

    name = "tasks-watch"
    categories = ("task", "grouprun")

    def __init__(
        self,
        store: EventStore,
        on_due: OnDue,
        repositories: Mapping[Kind, Repository[Any]] | None = None,
        streams: Streams | None = None,
    ) -> None:
        super().__init__(store)
        self.streams = streams or Streams()
        self.on_due = on_due
        self._repositories = dict(repositories or {})
        self._open: dict[Kind, dict[Key, Loaded[Any]]] = {"task": {}, "run": {}}
        self._timers: dict[tuple[Kind, Key], asyncio.TimerHandle] = {}
        self._outcome_waiters: dict[tuple[Kind, Key], list[asyncio.Future[Any]]] = {}
        self._firing: set[asyncio.Task[None]] = set()

    def fold(self, event: Event) -> None:
        """Fold task and run events; skip the rest."""
        if event.stream.startswith("task-"):
            kind: Kind = "task"
        elif event.stream.startswith("grouprun-"):
            kind = "run"
        else:
            return
        if event.version == 1:
            self.streams.note(kind, event)
        key = (event.namespace, event.subject)  # a task's (or run's) events name it
        known = self._open[kind].get(key)
        if known is None and event.version != 1:
            return  # a finished one's late event (we dropped it), or unknown history
        state = _EVOLVE[kind](known.state if known else None, event)
        if state is None:
            return
        loaded = self._open[kind][key] = Loaded(state, event.version, event.position)
        if (repository := self._repositories.get(kind)) is not None:
            repository.remember(event.stream, loaded)
        self._notify(kind, key, loaded)
        if _finished(state):
            del self._open[kind][key]
            self._disarm(kind, key)
        else:
            self._arm(kind, key, state.deadline)

    def open(self, kind: Kind) -> list[Any]:
        """Every open task (or running group run), as last folded."""
        return [loaded.state for loaded in self._open[kind].values()]

    async def settled(
        self, kind: Kind, namespace: str, ident: str, within: float
    ) -> Loaded[Any] | None:
        """Wait until the task leaves ``announced`` (or the run ends); None after ``within``."""
        key = (namespace, ident)
        loaded = self._open[kind].get(key)
        if loaded is None:
            return None  # unknown here, or finished and dropped: read the stream
        if not _pending(loaded.state):
            return loaded
        future: asyncio.Future[Loaded[Any]] = asyncio.get_running_loop().create_future()
        self._outcome_waiters.setdefault((kind, key), []).append(future)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            return None
        finally:
            waiting = self._outcome_waiters.get((kind, key), [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._outcome_waiters.pop((kind, key), None)

    async def stop(self) -> None:
        """Stop following and drop every timer."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for running in list(self._firing):
            running.cancel()
        await super().stop()

    def _notify(self, kind: Kind, key: Key, loaded: Loaded[Any]) -> None:
        if _pending(loaded.state):
            return
        for future in self._outcome_waiters.pop((kind, key), []):
            if not future.done():
                future.set_result(loaded)

    def _arm(self, kind: Kind, key: Key, deadline: datetime | None) -> None:
        self._disarm(kind, key)
        if deadline is None:
            return
        delay = max(0.0, (deadline - utcnow()).total_seconds() + _EPSILON_S)
        loop = asyncio.get_running_loop()
        self._timers[(kind, key)] = loop.call_later(delay, self._fire, kind, key)

    def _disarm(self, kind: Kind, key: Key) -> None:
        handle = self._timers.pop((kind, key), None)
        if handle is not None:
            handle.cancel()

    def _fire(self, kind: Kind, key: Key) -> None:
        self._timers.pop((kind, key), None)
        running = asyncio.create_task(self._due(kind, key), name=f"due-{kind}-{key[0]}-{key[1]}")
        self._firing.add(running)
        running.add_done_callback(self._firing.discard)

    async def _due(self, kind: Kind, key: Key) -> None:
        retry = _RECHECK_S
        try:
            current = self._open[kind].get(key)
            if current is not None and current.state is not None:
                await self.on_due(kind, key[1], key[0])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s: deadline handling failed; retrying in 1s", kind, key)
            retry = 1.0
        # Still open with no newer timer (the decision was a no-op, or failed): look again.
        loaded = self._open[kind].get(key)
        if loaded is not None and loaded.state is not None and (kind, key) not in self._timers:
            deadline: datetime | None = loaded.state.deadline
            if deadline is not None:
                delay = max(retry, (deadline - utcnow()).total_seconds() + _EPSILON_S)
                loop = asyncio.get_running_loop()
                self._timers[(kind, key)] = loop.call_later(delay, self._fire, kind, key)


def _finished(state: Any) -> bool:
    if isinstance(state, Task):
        return state.finished
    return bool(state.status != "running")


def _pending(state: Any) -> bool:
    """Still waiting for the outcome a `wait`ing caller wants."""
    if isinstance(state, Task):
        return state.status in ("created", "announced")
    return bool(state.status == "running")
