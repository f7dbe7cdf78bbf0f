"""The execution worker: takes executions from the work queue and runs them.

Every runtime pulls from one durable consumer (``runtime-executions``) on ``PARLEY_WORK``; a
message is acknowledged only after the execution's outcome (or ``input_required``) is
appended, so the item of a runtime killed mid-run comes back after ``ack_wait`` and another
runtime resumes it: the run replays its recorded steps (:class:`~parley.aggregates.journal.Journal`)
and never repeats a tool call that has a result. A live worker keeps its message with
``in_progress`` every ``ack_wait / 3``, and answers pings on ``parley.ctl.execution.<id>``
so no other runtime takes it over as orphaned.

What to do with an item is decided by pure functions of the execution's state
(:func:`parley.runtime.domain.triage`, :func:`~parley.runtime.domain.agent_triage`, and the
aggregate's decider); this module gathers the facts they need and carries the verdicts out.
The attempt itself is :mod:`parley.runtime.workers.attempt`.
"""

import asyncio
import contextlib
import functools
import logging
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg

from parley.aggregates.execution import Begin
from parley.aggregates.execution import Execution
from parley.aggregates.execution import Fail
from parley.aggregates.execution import Moved
from parley.aggregates.execution import decide
from parley.aggregates.execution import evolve
from parley.contracts import subjects
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import execution_stream
from parley.eventstore.repository import fold
from parley.kit.workqueue import WorkQueue
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.domain import agent_triage
from parley.runtime.domain import effective
from parley.runtime.domain import triage
from parley.runtime.errors import RuntimeFault
from parley.runtime.executions import SUBJECT
from parley.runtime.executions import requeue_lost
from parley.runtime.workers.attempt import ACK
from parley.runtime.workers.attempt import Attempt
from parley.runtime.workers.attempt import Verdict
from parley.runtime.workers.attempt import envelope_of
from parley.runtime.workers.queued import QueueWorker

__all__ = ["DURABLE", "MAX_DELIVER", "ExecutionWorker"]

log = logging.getLogger(__name__)

DURABLE = "runtime-executions"
MAX_DELIVER = 1000
"""Deliveries of one work item (a wait for a busy agent's slot or a retry each takes one);
at the last one the execution is recorded as failed rather than silently dropped."""
_PING_TIMEOUT_S = 0.5
_SLOT_RETRY_S = 1.0


class ExecutionWorker(QueueWorker):
    """Works this process's share of the execution queue."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self._sweep: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[str]] = {}
        self._claimed: set[str] = set()

    async def start(self) -> None:
        """Create the work queue and its consumer, start pulling, sweep for lost items."""
        js, settings = self.deps.js, self.deps.settings
        queue = WorkQueue(
            js,
            stream=subjects.WORK_STREAM,
            durable=DURABLE,
            filter_subject=SUBJECT,
            handle=self._handle,
            ack_wait=settings.ack_wait,
            max_deliver=MAX_DELIVER,
            concurrency=max(1, settings.executions_in_flight),
        )
        await self._pull(queue, [subjects.WORK_ALL])
        self._sweep = asyncio.create_task(requeue_lost(self.deps), name="executions-sweep")

    async def stop(self) -> None:
        """Stop pulling; hand running executions back to the queue for another runtime."""
        if self._sweep is not None:
            self._sweep.cancel()
            await asyncio.gather(self._sweep, return_exceptions=True)
        await super().stop()

    async def _handle(self, msg: Msg) -> None:
        beat = asyncio.create_task(self._keep(msg))
        verdict = Verdict(False, 1.0)
        try:
            item = msgspec.json.decode(msg.data)
            first = msg.metadata.num_delivered == 1
            verdict = await self._work(str(item["execution_id"]), first)
        except asyncio.CancelledError:
            verdict = Verdict(False)  # stopping: another runtime takes it over at once
            raise
        except (msgspec.DecodeError, KeyError, TypeError):
            log.error("dropping an unreadable work item: %r", msg.data[:200])
            verdict = ACK
        except Exception:
            log.exception("execution work item failed; it will be retried")
        finally:
            beat.cancel()
            with contextlib.suppress(Exception):
                if not verdict.ack and msg.metadata.num_delivered >= MAX_DELIVER:
                    verdict = await self._give_up(msg)
                if verdict.ack:
                    await msg.ack()
                else:
                    await msg.nak(delay=verdict.delay or None)

    async def _give_up(self, msg: Msg) -> Verdict:
        """The item's last delivery: fail the execution so it does not stay open forever."""
        _, execution = await self._read(str(msgspec.json.decode(msg.data)["execution_id"]))
        if execution is None or not execution.runnable:
            return ACK
        message = f"no runtime could run the execution in {MAX_DELIVER} deliveries"
        return await self._fail(execution, ErrorCode.INTERNAL_ERROR, message)

    async def _keep(self, msg: Msg) -> None:
        """Tell JetStream this worker is alive and still on the item."""
        while True:
            await asyncio.sleep(self.deps.settings.ack_wait / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _work(self, execution_id: str, first: bool) -> Verdict:
        """Run the execution; ``first``: the item's first delivery (a copy of the request
        queued by this process may stand for a read: its start is appended at the version
        it shows, and a stale copy only loses that race and is read again)."""
        if execution_id in self._claimed:  # a duplicate item; this process already has it
            return Verdict(False, self.deps.settings.ack_wait)
        self._claimed.add(execution_id)
        try:
            for attempt in range(5):
                verdict = await self._take(execution_id, first and attempt == 0)
                if verdict is not None:
                    return verdict
            return Verdict(False, 1.0)
        finally:
            self._claimed.discard(execution_id)

    async def _take(self, execution_id: str, cached: bool = False) -> Verdict | None:
        """Run the execution if it is this worker's to run; None when it moved meanwhile.

        ``cached``: a queued request this process holds in its cache is taken as it is."""
        deps = self.deps
        events, execution = await self._read(execution_id, cached)
        owned = execution is not None and execution.status == "running"
        owned = owned and await self._owned(execution_id)
        first = triage(execution, owned=owned, ack_wait=deps.settings.ack_wait)
        if first.action != "run" or execution is None:
            return await self._carry_out(execution, first.action, first)
        await deps.directory.wait_for(execution.requested_position, 2.0)
        agent = deps.directory.get(execution.agent_id)
        second = agent_triage(execution, agent, effective(agent, SessionSettings()).instances)
        if second.action != "run" or agent is None:
            return await self._carry_out(execution, second.action, second)
        routed = deps.directory.route(agent, execution.id)  # the same on every attempt
        settings = effective(routed.agent, SessionSettings())
        async with contextlib.AsyncExitStack() as stack:
            # Answer pings from here on, so no other runtime takes it over as orphaned.
            ctl = await deps.nc.subscribe(
                subjects.control("execution", execution.id), cb=self._control
            )
            stack.push_async_callback(_unsubscribe, ctl)
            try:
                await stack.enter_async_context(
                    deps.capacity.slot(
                        agent.id,
                        settings.instances,
                        execution.namespace,
                        prepare=functools.partial(deps.provider, settings.provider),
                    )
                )
            except RuntimeFault as exc:
                # Every instance of the agent (or of its namespace's quota) busy: later.
                if exc.code in (ErrorCode.RATE_LIMITED, ErrorCode.QUOTA_EXCEEDED):
                    return Verdict(False, _SLOT_RETRY_S)
                raise
            begin = Begin(
                worker=deps.settings.worker,
                seen_version=execution.version,
                version=routed.version,
            )
            try:
                started = await execute(
                    deps.executions,
                    execution_stream(execution.id),
                    decide,
                    begin,
                    envelope_of(execution),
                )
            except Moved:
                return None  # someone else moved it: decide again
            assert started.outcome.state is not None
            attempt = Attempt(
                deps, started.outcome.state, events, settings, self._running, routed.version
            )
            return await attempt.run()

    async def _carry_out(self, execution: Execution | None, action: str, verdict: Any) -> Verdict:
        if action == "ack":
            return ACK
        if action == "later":
            return Verdict(False, verdict.delay)
        assert execution is not None and verdict.code is not None
        return await self._fail(execution, verdict.code, verdict.message)

    async def _read(
        self, execution_id: str, cached: bool = False
    ) -> tuple[list[Event], Execution | None]:
        """The execution's events (its run's journal) and state, read afresh; with
        ``cached``, the request alone (version 1) as this process's cache holds it."""
        stream = execution_stream(execution_id)
        copy = self.deps.executions.cached(stream) if cached else None
        if copy is not None and copy.version == 1 and copy.state is not None:
            return [], copy.state  # only its request: nothing run yet, no journal
        events = await self.deps.store.read(stream)
        loaded = fold(events, evolve)
        self.deps.executions.remember(stream, loaded)
        return events, loaded.state

    async def _owned(self, execution_id: str) -> bool:
        """Whether a live worker runs the execution (its runtime answers the ping)."""
        try:
            await self.deps.nc.request(
                subjects.control("execution", execution_id), b"ping", timeout=_PING_TIMEOUT_S
            )
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return True  # busy, not dead: leave it
        return True

    async def _control(self, msg: Msg) -> None:
        execution_id = msg.subject.rsplit(".", 1)[-1]
        task = self._running.get(execution_id)
        if msg.data == b"cancel" and task is not None:
            task.cancel()
        if msg.reply and execution_id in self._claimed:
            await msg.respond(b"running" if task is not None else b"starting")

    async def _fail(self, execution: Execution, code: ErrorCode, message: str) -> Verdict:
        """Record that the execution failed before it could run (unless it moved on)."""
        fail = Fail(attempts_seen=execution.attempts, code=code, message=message)
        executed = await execute(
            self.deps.executions,
            execution_stream(execution.id),
            decide,
            fail,
            envelope_of(execution),
        )
        del executed  # recorded, or a later attempt took it meanwhile: either way, done
        return ACK


async def _unsubscribe(sub: Any) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
