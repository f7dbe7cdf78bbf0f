"""Periodic triggers: one scheduler across every runtime process fires agents' schedules.

Leadership is a lease: the key ``scheduler`` in the JetStream KV bucket ``parley-leases``
(entries expire after :data:`LEASE_TTL_S`). The leader renews it each tick with an update
at the revision it holds; every other runtime tries ``create`` each tick, which succeeds only
once the key has expired (its leader died) or was deleted (its leader stopped).

Fire times are computed, not remembered: an interval fires at the multiples of
``interval_seconds`` since the epoch, a cron expression (five fields, UTC) at its matches.
Each tick the leader fires the *latest* due slot of each running periodic agent, unless it is
older than the moment the agent last started (a paused or new agent does not catch up) or
already fired. The execution id is derived from (agent id, slot), and ``execution.requested``
is appended to a new stream only, so two leaders during a hand-over fire a slot once.
"""

import asyncio
import contextlib
import logging
import math
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from cronsim import CronSim
from cronsim import CronSimError
from nats.js.api import KeyValueConfig
from nats.js.api import StorageType
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from parley.aggregates.agent import Agent
from parley.contracts import subjects
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentState
from parley.contracts.registry import Trigger
from parley.contracts.registry import agent_stream
from parley.contracts.runtime import TriggerExecution
from parley.runtime.deps import Deps
from parley.runtime.executions import ExecutionCommands

__all__ = ["LEASE_TTL_S", "Scheduler", "due_slot", "latest_slot", "slot_execution_id"]

log = logging.getLogger(__name__)

KEY = "scheduler"
LEASE_TTL_S = 3.0
"""How long a dead leader blocks the schedule (the longest gap a hand-over can leave)."""
_SLOT_IDS = uuid.UUID("6f1d3a52-9c0e-4d1b-8a47-2f0c5e9b7d31")


def latest_slot(trigger: Trigger, now: datetime) -> datetime | None:
    """The last fire time at or before ``now`` (UTC), or None when the trigger has none.

    Raises:
        ValueError: when ``trigger.cron`` is not a valid cron expression.
    """
    if trigger.type != "periodic":
        return None
    if trigger.interval_seconds:
        step = trigger.interval_seconds
        return datetime.fromtimestamp(math.floor(now.timestamp() / step) * step, UTC)
    if trigger.cron:
        try:
            # reverse iteration yields times strictly before its start: start just after now
            return next(CronSim(trigger.cron, now + timedelta(microseconds=1), reverse=True))
        except (CronSimError, StopIteration) as exc:
            raise ValueError(f"bad cron expression {trigger.cron!r}: {exc}") from exc
    return None


def due_slot(trigger: Trigger, now: datetime, since: datetime) -> datetime | None:
    """The slot to fire now: the latest at or before ``now``, if not before ``since``."""
    slot = latest_slot(trigger, now)
    return slot if slot is not None and slot >= since else None


def slot_execution_id(agent_id: str, slot: datetime) -> str:
    """The execution id of an agent's slot: the same on every runtime."""
    return str(uuid.uuid5(_SLOT_IDS, f"{agent_id}@{slot.astimezone(UTC).isoformat()}"))


class Scheduler:
    """Holds the lease when it can and, while it does, fires periodic triggers."""

    def __init__(self, deps: Deps, executions: ExecutionCommands) -> None:
        self.deps, self.executions = deps, executions
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._fired: dict[str, datetime] = {}
        self._since: dict[str, tuple[int, datetime]] = {}
        self._bad_cron: set[tuple[str, str]] = set()

    @property
    def leader(self) -> bool:
        """Whether this process held the lease at its last tick."""
        return self._revision is not None

    async def start(self) -> None:
        """Open the lease bucket and start ticking."""
        await self.ensure()
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def ensure(self) -> None:
        """Create the lease bucket (or keep it)."""
        self._kv = await self.deps.js.create_key_value(
            KeyValueConfig(
                bucket=subjects.LEASES_BUCKET,
                ttl=LEASE_TTL_S,
                storage=StorageType.MEMORY,
                history=1,
                replicas=self.deps.settings.nats_replicas,
            )
        )

    async def stop(self) -> None:
        """Stop ticking and give the lease up, so another runtime leads at its next tick."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._kv is not None and self._revision is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(KEY, last=self._revision)
        self._revision = None

    async def _run(self) -> None:
        pause = min(self.deps.settings.scheduler_tick, LEASE_TTL_S / 3)
        while True:
            try:
                if await self._lead():
                    await self._tick(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(pause)

    async def _lead(self) -> bool:
        assert self._kv is not None
        me = self.deps.settings.worker.encode()
        if self._revision is not None:
            try:
                self._revision = await self._kv.update(KEY, me, last=self._revision)
                return True
            except KeyWrongLastSequenceError:
                log.warning("scheduler lease lost")
                self._revision = None
        try:
            self._revision = await self._kv.create(KEY, me)
        except KeyWrongLastSequenceError:
            return False
        log.info("scheduler lease taken by %s", self.deps.settings.worker)
        self._fired.clear()  # what another leader fired is in the store; the append dedupes
        return True

    async def _tick(self, now: datetime) -> None:
        for agent in self.deps.directory.agents():
            trigger = agent.spec.trigger
            if agent.state is not AgentState.RUNNING or trigger.type != "periodic":
                continue
            try:
                slot = latest_slot(trigger, now)
            except ValueError as exc:
                if (agent.id, str(trigger.cron)) not in self._bad_cron:
                    self._bad_cron.add((agent.id, str(trigger.cron)))
                    log.error("agent %s: %s", agent.id, exc)
                continue
            if slot is None or self._fired.get(agent.id) == slot:
                continue
            if slot < await self._running_since(agent):
                continue
            await self._fire(agent, slot)

    async def _fire(self, agent: Agent, slot: datetime) -> None:
        command = TriggerExecution(
            namespace=agent.namespace,
            agent_id=agent.id,
            execution_id=slot_execution_id(agent.id, slot),
            input_data={"scheduled_for": slot.isoformat()},
            trigger="periodic",
        )
        try:
            await self.executions.trigger(command)
        except ParleyError as exc:  # paused or deleted since the look: skip the slot
            log.info("periodic trigger of %s skipped: %s", agent.id, exc.message)
        self._fired[agent.id] = slot

    async def _running_since(self, agent: Agent) -> datetime:
        """When the agent last entered ``running`` (read once per agent version)."""
        cached = self._since.get(agent.id)
        if cached is not None and cached[0] == agent.version:
            return cached[1]
        since = agent.updated_at
        for event in await self.deps.store.read(agent_stream(agent.id)):
            if event.type == "agent.state_changed" and event.data.get("to_state") == "running":
                since = event.time
        self._since[agent.id] = (agent.version, since)
        return since
