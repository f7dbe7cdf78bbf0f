"""The agents projection: every live agent as an :class:`AgentView`, folded from events.

It subscribes from position 0 at start (a rebuild; the store is the checkpoint), keeps
``applied_position`` and wakes read-your-writes waiters as positions are applied. It reads
every category so ``applied_position`` reaches the store's last position at start even when
the newest event is not an agent's; non-agent events are skipped after one string check.
"""

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

from parley.aggregates.agent import Agent, CorruptStreamError, evolve
from parley.contracts.envelope import Event
from parley.contracts.registry import AgentView
from parley.eventstore import EventStore, Subscription

__all__ = ["AgentsProjection", "iso"]

log = logging.getLogger(__name__)
_RETRY_S = 0.5


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (`2025-01-02T03:04:05.000006Z`), so it sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AgentsProjection:
    """Live agents by namespace and id, with a position waiters can wait for."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.applied_position = 0
        """Position of the last event folded (of any category)."""
        self.target_position = 0
        """The store's last position at start; the projection is ready once it gets there."""
        self._agents: dict[str, Agent] = {}
        self._by_ns: dict[str, dict[str, AgentView]] = {}
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._stopping = False

    @property
    def ready(self) -> bool:
        """Whether the rebuild has caught up with the store as it was at start."""
        return self._task is not None and self.applied_position >= self.target_position

    async def start(self) -> None:
        """Note the store's last position and start folding from position 0."""
        self.target_position = await self.store.last_position()
        self._task = asyncio.create_task(self._run(), name="agents-projection")

    async def stop(self) -> None:
        """Stop the subscription and fail pending waiters."""
        self._stopping = True
        if self._sub is not None:
            await self._sub.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _, _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()

    async def wait_for(self, position: int, within: float) -> bool:
        """Wait until ``position`` is applied; False if ``within`` seconds pass first."""
        if self.applied_position >= position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._seq), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            return self.applied_position >= position
        return True

    def get(self, namespace: str, agent_id: str) -> AgentView | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        return self._by_ns.get(namespace, {}).get(agent_id)

    def agents(self, namespace: str) -> Iterable[AgentView]:
        """Every live agent of ``namespace``, in no particular order."""
        return self._by_ns.get(namespace, {}).values()

    def find(self, namespace: str, predicate: Callable[[AgentView], bool]) -> list[AgentView]:
        """The live agents of ``namespace`` for which ``predicate`` holds."""
        return [view for view in self.agents(namespace) if predicate(view)]

    def apply(self, event: Event) -> None:
        """Fold one event; events at or before ``applied_position`` are ignored."""
        if event.position and event.position <= self.applied_position:
            return
        if event.stream.startswith("agent-"):
            try:
                self._fold(event)
            except (msgspec.ValidationError, CorruptStreamError):
                log.exception("skipped unreadable event %s (%s)", event.id, event.type)
        if event.position:
            self.applied_position = event.position
            self._wake()

    def _fold(self, event: Event) -> None:
        agent = evolve(self._agents.get(event.subject), event)
        if agent is None:
            return
        self._agents[agent.id] = agent
        views = self._by_ns.setdefault(agent.namespace, {})
        if agent.deleted:
            views.pop(agent.id, None)
        else:
            views[agent.id] = _view(agent)

    def _wake(self) -> None:
        waiters, applied = self._waiters, self.applied_position
        while waiters and waiters[0][0] <= applied:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)

    async def _run(self) -> None:
        while not self._stopping:
            self._sub = self.store.subscribe(self.applied_position)
            try:
                async for event in self._sub:
                    self.apply(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("agents projection feed failed; resubscribing")
            finally:
                await self._sub.close()
            if not self._stopping:
                await asyncio.sleep(_RETRY_S)  # back off before resubscribing


def _view(agent: Agent) -> AgentView:
    return AgentView(
        id=agent.id,
        namespace=agent.namespace,
        state=agent.state,
        version=agent.version,
        created_at=iso(agent.created_at),
        updated_at=iso(agent.updated_at),
        spec=agent.spec,
    )
