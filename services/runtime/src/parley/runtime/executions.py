"""Executions: durable runs of an agent, taken from a JetStream work queue by any runtime.

``trigger`` appends ``execution.requested`` to ``execution-<id>`` and publishes a work item
(``{"execution_id", "namespace"}``) on ``parley.work.execution`` in the work-queue stream
``PARLEY_WORK``, with ``Nats-Msg-Id`` ``<id>:<version>`` so a republished item is stored once.
Every runtime pulls from one durable consumer; a message is acknowledged only after the
execution's outcome (or ``input_required``) is appended, so the item of a runtime killed
mid-run comes back after ``ack_wait`` and another runtime resumes it: the run replays its
recorded steps (:class:`~parley.runtime.journal.Journal`) and never repeats a tool call that
has a result. A live worker keeps its message with ``in_progress`` every ``ack_wait / 3``.

The worker owns the stream while it runs: every append carries the expected version, so a
cancel (or another worker) writing in between surfaces as a ``ConcurrencyConflict``; the
worker then reloads and stops without recording a second outcome.

Attempts: each start is ``execution.started`` with ``attempt`` = previous starts + 1. A
retryable failure (provider errors, and a stream broken mid-answer: the partial answer is
not a recorded step, so the next attempt asks again) is retried after
``retry_backoff_seconds * 2**(n-1)`` while the attempts since the last request or answer are
under ``options.max_attempts``; a crash counts as an attempt too. ``timeout_seconds`` bounds
each attempt (a parked execution does not run down its clock while a person decides).

The window between the append and the publish (a runtime dying right between them, or NATS
refusing the publish) leaves an execution ``queued`` with no work item. It is covered twice:
a trigger retried with the same ``execution_id`` republishes, and each runtime, when it
starts, sweeps the store for ``queued`` executions and republishes them (``Nats-Msg-Id``
makes that a no-op for items still in the queue; a worker taking a duplicate finds the
execution already started or finished and drops it).
"""

import asyncio
import contextlib
import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import nats.errors
from nats.aio.msg import Msg

from parley.contracts import subjects
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody, ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.registry import AgentState
from parley.contracts.runtime import (
    CancelExecution,
    ExecutionInput,
    ExecutionInputReceived,
    ExecutionInputRequired,
    ExecutionRequested,
    ExecutionStarted,
    RunFinished,
    RuntimeReply,
    SessionSettings,
    TriggerExecution,
    execution_stream,
)
from parley.eventstore import NO_STREAM, ConcurrencyConflict
from parley.eventstore.follower import Follower
from parley.kit.telemetry import current_traceparent
from parley.kit.workqueue import WorkQueue, ensure_work_stream
from parley.runtime.context import (
    Deps,
    Effective,
    NullSink,
    StreamRecorder,
    build_run,
    effective,
    running_agent,
)
from parley.runtime.errors import RuntimeFault, error_body
from parley.runtime.execution import Execution, evolve
from parley.runtime.journal import Journal
from parley.runtime.messenger import AgentMessenger
from parley.runtime.runs import InputRequired, Interrupted, Run
from parley.runtime.strategies import run_strategy
from parley.runtime.tools import ToolContext

__all__ = ["DURABLE", "STREAM", "Executions", "ctl_subject", "input_text"]

log = logging.getLogger(__name__)

STREAM = "PARLEY_WORK"
DURABLE = "runtime-executions"
SUBJECT = subjects.work("execution")
MAX_DELIVER = 1000
"""Deliveries of one work item (a wait for a busy agent's slot or a retry each takes one);
at the last one the execution is recorded as failed rather than silently dropped."""
_PING_TIMEOUT_S = 0.5
_SLOT_RETRY_S = 1.0
_encode = msgspec.json.Encoder().encode


def ctl_subject(execution_id: str) -> str:
    """Control subject of a running execution (answered only by the worker running it)."""
    return f"parley.ctl.execution.{execution_id}"


def input_text(input_data: dict[str, Any]) -> str:
    """The run's user message: ``message`` or ``input`` when a string, else the data as JSON."""
    for key in ("message", "input"):
        if isinstance(value := input_data.get(key), str) and value:
            return value
    return json.dumps(input_data, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class _Verdict:
    """What to do with a work item: acknowledge it, or hand it back after ``delay``."""

    ack: bool
    delay: float = 0.0


ACK = _Verdict(True)


class _Deadline(Exception):
    """The attempt ran past ``options.timeout_seconds``."""


class Executions:
    """Triggers, answers and cancels executions; works this process's share of the queue."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._queue: WorkQueue | None = None
        self._sweep: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[str]] = {}
        self._claimed: set[str] = set()
        self._stopping = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the work queue and its consumer, start pulling, sweep for lost items."""
        js, settings = self.deps.js, self.deps.settings
        await ensure_work_stream(js, STREAM, [subjects.WORK_ALL])
        self._queue = WorkQueue(
            js,
            stream=STREAM,
            durable=DURABLE,
            filter_subject=SUBJECT,
            handle=self._handle,
            ack_wait=settings.ack_wait,
            max_deliver=MAX_DELIVER,
            concurrency=max(1, settings.executions_in_flight),
        )
        await self._queue.start()
        self._sweep = asyncio.create_task(self._requeue_lost(), name="executions-sweep")

    async def stop(self) -> None:
        """Stop pulling; hand running executions back to the queue for another runtime."""
        self._stopping = True
        if self._sweep is not None:
            self._sweep.cancel()
            await asyncio.gather(self._sweep, return_exceptions=True)
        if self._queue is not None:
            await self._queue.stop()

    # --- commands ----------------------------------------------------------------------

    async def trigger(self, cmd: TriggerExecution) -> RuntimeReply:
        """Queue an execution of a running agent; a known ``execution_id`` is idempotent."""
        deps = self.deps
        if cmd.min_position:
            await deps.directory.wait_for(cmd.min_position, 2.0)
        running_agent(deps, cmd.agent_id, cmd.namespace)
        execution_id = cmd.execution_id or new_id()
        recorder = self._recorder(
            execution_id, cmd.namespace, cmd.request_id, cmd.traceparent, NO_STREAM
        )
        try:
            await recorder.record(
                "execution.requested",
                ExecutionRequested(
                    execution_id=execution_id,
                    agent_id=cmd.agent_id,
                    trigger=cmd.trigger,
                    input_data=cmd.input_data,
                    options=cmd.options,
                ),
            )
        except ConcurrencyConflict:
            _, existing = await self._read(execution_id)
            if (
                existing is None
                or existing.agent_id != cmd.agent_id
                or existing.namespace != cmd.namespace
            ):
                raise RuntimeFault(
                    ErrorCode.CONCURRENCY_CONFLICT,
                    f"execution id {execution_id!r} is taken; choose another",
                ) from None
            if existing.status == "queued":  # heal a lost publish
                await self._enqueue(existing.id, existing.namespace, existing.version)
            return RuntimeReply(
                ok=True,
                execution_id=execution_id,
                version=existing.version,
                position=existing.position,
            )
        await self._enqueue(execution_id, cmd.namespace, 1)
        return RuntimeReply(
            ok=True, execution_id=execution_id, version=1, position=recorder.position
        )

    async def answer(self, cmd: ExecutionInput) -> RuntimeReply:
        """Answer the approval request of an ``input_required`` execution; it runs on."""
        for _ in range(3):
            execution = await self._visible(cmd.execution_id, cmd.agent_id, cmd.namespace)
            pending = execution.pending
            if execution.status != "input_required" or pending is None:
                raise RuntimeFault(
                    ErrorCode.INPUT_NOT_EXPECTED,
                    f"execution {execution.id!r} is {execution.status}, not waiting for input",
                    {"status": execution.status},
                )
            recorder = self._recorder(
                execution.id, cmd.namespace, cmd.request_id, cmd.traceparent, execution.version
            )
            try:
                await recorder.record(
                    "execution.input_received",
                    ExecutionInputReceived(
                        execution_id=execution.id,
                        agent_id=execution.agent_id,
                        call_id=pending.call_id,
                        approved=cmd.approved,
                        response=cmd.response,
                    ),
                )
            except ConcurrencyConflict:
                continue
            assert recorder.version is not None
            await self._enqueue(execution.id, execution.namespace, recorder.version)
            return RuntimeReply(
                ok=True,
                execution_id=execution.id,
                version=recorder.version,
                position=recorder.position,
            )
        raise RuntimeFault(
            ErrorCode.CONCURRENCY_CONFLICT, "the execution kept changing; read it and retry"
        )

    async def cancel(self, cmd: CancelExecution) -> RuntimeReply:
        """Cancel a queued, waiting or running execution (its worker stops at once)."""
        for _ in range(5):
            execution = await self._visible(cmd.execution_id, cmd.agent_id, cmd.namespace)
            if execution.finished:
                raise RuntimeFault(
                    ErrorCode.INVALID_STATE_TRANSITION,
                    f"execution {execution.id!r} is already {execution.status}",
                    {"status": execution.status},
                )
            recorder = self._recorder(
                execution.id, cmd.namespace, cmd.request_id, cmd.traceparent, execution.version
            )
            try:
                await recorder.record(
                    "execution.cancelled",
                    RunFinished(
                        run_id=execution.id,
                        outcome="cancelled",
                        agent_id=execution.agent_id,
                    ),
                )
            except ConcurrencyConflict:  # the worker recorded a step; decide again
                continue
            if execution.status == "running":
                # A hint so the worker stops now rather than at its next append (which would
                # conflict anyway): the recorded cancel is the truth, this message is not.
                with contextlib.suppress(Exception):
                    await self.deps.nc.publish(ctl_subject(execution.id), b"cancel")
            return RuntimeReply(
                ok=True,
                execution_id=execution.id,
                version=recorder.version or 0,
                position=recorder.position,
            )
        raise RuntimeFault(
            ErrorCode.CONCURRENCY_CONFLICT, "the execution kept changing; read it and retry"
        )

    # --- reading and queueing ----------------------------------------------------------

    async def _read(self, execution_id: str) -> tuple[list[Event], Execution | None]:
        events = await self.deps.store.read(execution_stream(execution_id))
        state: Execution | None = None
        for event in events:
            state = evolve(state, event)
        return events, state

    async def _visible(self, execution_id: str, agent_id: str, namespace: str) -> Execution:
        _, execution = await self._read(execution_id)
        if execution is None or execution.agent_id != agent_id or execution.namespace != namespace:
            raise RuntimeFault(
                ErrorCode.EXECUTION_NOT_FOUND,
                f"agent {agent_id!r} has no execution {execution_id!r}",
            )
        return execution

    async def _enqueue(self, execution_id: str, namespace: str, version: int) -> None:
        body = _encode({"execution_id": execution_id, "namespace": namespace})
        headers = {"Nats-Msg-Id": f"{execution_id}:{version}"}
        for attempt in range(3):
            try:
                await self.deps.js.publish(SUBJECT, body, stream=STREAM, headers=headers)
                return
            except Exception:
                if attempt == 2:
                    # Recorded but not queued: a retried trigger or the next start-up sweep
                    # queues it (see the module docstring).
                    log.exception("could not queue execution %s", execution_id)
                    return
                await asyncio.sleep(0.1 * (attempt + 1))

    async def _requeue_lost(self) -> None:
        """Queue again every execution recorded as ``queued`` (a publish may have been lost)."""
        sweep = _QueuedSweep(self.deps.store)
        await sweep.start()
        try:
            if not await sweep.wait_for(sweep.target_position, 60.0):
                log.warning("the start-up sweep of queued executions did not finish in 60s")
                return
        finally:
            await sweep.stop()
        for execution in sweep.queued():
            await self._enqueue(execution.id, execution.namespace, execution.version)

    def _recorder(
        self,
        execution_id: str,
        namespace: str,
        correlation_id: str | None,
        traceparent: str | None,
        expected_version: int,
    ) -> StreamRecorder:
        return StreamRecorder(
            self.deps.store,
            execution_stream(execution_id),
            subject=execution_id,
            namespace=namespace,
            correlation_id=correlation_id,
            traceparent=traceparent or current_traceparent(),
            expected_version=expected_version,
        )

    # --- the worker --------------------------------------------------------------------

    async def _handle(self, msg: Msg) -> None:
        beat = asyncio.create_task(self._keep(msg))
        verdict = _Verdict(False, 1.0)
        try:
            item = msgspec.json.decode(msg.data)
            verdict = await self._work(str(item["execution_id"]))
        except asyncio.CancelledError:
            verdict = _Verdict(False)  # stopping: another runtime takes it over at once
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

    async def _give_up(self, msg: Msg) -> _Verdict:
        """The item's last delivery: fail the execution so it does not stay open forever."""
        _, execution = await self._read(str(msgspec.json.decode(msg.data)["execution_id"]))
        if execution is None or not execution.runnable:
            return ACK
        return await self._fail_now(
            execution,
            ErrorCode.INTERNAL_ERROR,
            f"no runtime could run the execution in {MAX_DELIVER} deliveries",
        )

    async def _keep(self, msg: Msg) -> None:
        """Tell JetStream this worker is alive and still on the item."""
        while True:
            await asyncio.sleep(self.deps.settings.ack_wait / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _work(self, execution_id: str) -> _Verdict:
        if execution_id in self._claimed:  # a duplicate item; this process already has it
            return _Verdict(False, self.deps.settings.ack_wait)
        self._claimed.add(execution_id)
        try:
            return await self._take(execution_id)
        finally:
            self._claimed.discard(execution_id)

    async def _take(self, execution_id: str) -> _Verdict:
        deps = self.deps
        for _ in range(5):
            events, execution = await self._read(execution_id)
            if execution is None or not execution.runnable:
                return ACK  # finished, parked, or unknown: nothing to do
            if execution.status == "running" and await self._owned(execution_id):
                return _Verdict(False, deps.settings.ack_wait)  # look again later
            options = execution.options
            if execution.leg_attempts >= options.max_attempts:
                return await self._fail_now(
                    execution,
                    ErrorCode.INTERNAL_ERROR,
                    f"the execution was attempted {execution.leg_attempts} times and its runtime"
                    " stopped during each",
                )
            await deps.directory.wait_for(execution.requested_position, 2.0)
            agent = deps.directory.get(execution.agent_id)
            if agent is None or agent.namespace != execution.namespace:
                return await self._fail_now(
                    execution, ErrorCode.AGENT_NOT_FOUND, f"no agent {execution.agent_id!r}"
                )
            if agent.state is not AgentState.RUNNING:
                return await self._fail_now(
                    execution,
                    ErrorCode.AGENT_NOT_RUNNING,
                    f"agent {agent.id!r} is {agent.state.value}; start or resume it first",
                )
            settings = effective(agent, SessionSettings())
            if settings.instances <= 0:
                return await self._fail_now(
                    execution, ErrorCode.RATE_LIMITED, "the agent has 0 instances"
                )
            async with contextlib.AsyncExitStack() as stack:
                # Answer pings from here on, so no other runtime takes it over as orphaned.
                ctl = await deps.nc.subscribe(ctl_subject(execution.id), cb=self._control)
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
                    if exc.code is ErrorCode.RATE_LIMITED:  # every instance busy: later
                        return _Verdict(False, _SLOT_RETRY_S)
                    raise
                recorder = self._recorder(
                    execution.id,
                    execution.namespace,
                    execution.correlation_id,
                    execution.traceparent,
                    execution.version,
                )
                attempt = execution.attempts + 1
                try:
                    await recorder.record(
                        "execution.started",
                        ExecutionStarted(
                            execution_id=execution.id,
                            agent_id=execution.agent_id,
                            attempt=attempt,
                            worker=deps.settings.worker,
                        ),
                    )
                except ConcurrencyConflict:
                    continue  # someone else moved it: decide again
                return await self._attempt(execution, events, recorder, attempt, settings)
        return _Verdict(False, 1.0)

    async def _owned(self, execution_id: str) -> bool:
        """Whether a live worker runs the execution (its runtime answers the ping)."""
        try:
            await self.deps.nc.request(ctl_subject(execution_id), b"ping", timeout=_PING_TIMEOUT_S)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return True  # busy, not dead: leave it
        return True

    async def _attempt(
        self,
        execution: Execution,
        events: list[Event],
        recorder: StreamRecorder,
        attempt: int,
        settings: Effective,
    ) -> _Verdict:
        deps = self.deps
        began = time.monotonic()
        try:
            run = await build_run(
                deps,
                settings,
                run_id=execution.id,
                kind="execution",
                namespace=execution.namespace,
                agent_id=execution.agent_id,
                history=(),
                input=input_text(execution.input_data),
                tool_context=ToolContext(
                    namespace=execution.namespace,
                    agent_id=execution.agent_id,
                    session_id=None,
                    files=None,
                    messenger=AgentMessenger(
                        deps.nc, namespace=execution.namespace, agent_id=execution.agent_id, hops=0
                    ),
                ),
                journal=Journal.of(events, execution.id),
                recorder=recorder,
                sink=NullSink(),
            )
        except RuntimeFault as exc:  # e.g. the persona was deleted
            end = RunFinished(
                run_id=execution.id,
                outcome="failed",
                error=exc.to_body(),
                agent_id=execution.agent_id,
            )
            return await self._record_end(recorder, end, attempt)
        task = asyncio.create_task(
            self._bounded(run, execution.options.timeout_seconds), name=f"execution-{execution.id}"
        )
        self._running[execution.id] = task
        outcome: Literal["completed", "failed"] = "completed"
        output, error = "", None
        try:
            try:
                output = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this runtime is stopping
                return await self._after_conflict(execution.id, attempt)  # a cancel
            except InputRequired as exc:
                await recorder.record(
                    "execution.input_required",
                    ExecutionInputRequired(
                        execution_id=execution.id,
                        agent_id=execution.agent_id,
                        step=exc.step,
                        call_id=exc.call.id,
                        tool=exc.call.name,
                        arguments=exc.call.arguments,
                    ),
                )
                return ACK
            except ConcurrencyConflict:
                return await self._after_conflict(execution.id, attempt)
            except _Deadline:
                outcome = "failed"
                error = ErrorBody(
                    code=ErrorCode.TIMEOUT,
                    message=f"the run took longer than {execution.options.timeout_seconds:g}s;"
                    " raise options.timeout_seconds",
                )
            except (Interrupted, RuntimeFault) as exc:
                retryable = isinstance(exc, Interrupted) or exc.retryable
                if retryable and execution.leg_attempts + 1 < execution.options.max_attempts:
                    delay = execution.options.retry_backoff_seconds * 2 ** (execution.leg_attempts)
                    log.warning(
                        "execution %s attempt %d failed (%s); retrying in %gs",
                        execution.id,
                        attempt,
                        exc,
                        delay,
                    )
                    return _Verdict(False, delay)
                outcome = "failed"
                if isinstance(exc, Interrupted):
                    output = exc.partial
                    error = ErrorBody(
                        code=ErrorCode.PROVIDER_ERROR,
                        message=f"the provider's stream broke after it started: {exc.reason}",
                    )
                else:
                    error = exc.to_body()
            except Exception as exc:  # every other failure ends the execution, recorded
                outcome, error = "failed", error_body(exc)
            finished = RunFinished(
                run_id=execution.id,
                outcome=outcome,
                output=output,
                usage=run.usage,
                response_time_ms=round((time.monotonic() - began) * 1000, 3),
                steps=run.steps,
                error=error,
                agent_id=execution.agent_id,
            )
            return await self._record_end(recorder, finished, attempt)
        finally:
            self._running.pop(execution.id, None)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _record_end(
        self, recorder: StreamRecorder, finished: RunFinished, attempt: int
    ) -> _Verdict:
        """Append the outcome, unless someone else wrote first (then never a second one)."""
        try:
            await recorder.record(f"execution.{finished.outcome}", finished)
        except ConcurrencyConflict:
            return await self._after_conflict(finished.run_id, attempt)
        return ACK

    @staticmethod
    async def _bounded(run: Run, seconds: float) -> str:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await run_strategy(run)
        except TimeoutError:
            if deadline.expired():
                raise _Deadline from None
            raise

    async def _control(self, msg: Msg) -> None:
        execution_id = msg.subject.rsplit(".", 1)[-1]
        task = self._running.get(execution_id)
        if msg.data == b"cancel" and task is not None:
            task.cancel()
        if msg.reply and execution_id in self._claimed:
            await msg.respond(b"running" if task is not None else b"starting")

    async def _after_conflict(self, execution_id: str, attempt: int) -> _Verdict:
        """Someone else wrote to the stream: stop unless the execution is still ours to run."""
        _, execution = await self._read(execution_id)
        if execution is None or not execution.runnable or execution.attempts > attempt:
            return ACK  # cancelled, finished, parked, or taken over by another attempt
        return _Verdict(False, 0.5)

    async def _fail_now(self, execution: Execution, code: ErrorCode, message: str) -> _Verdict:
        """Record that the execution failed before it could run."""
        recorder = self._recorder(
            execution.id,
            execution.namespace,
            execution.correlation_id,
            execution.traceparent,
            execution.version,
        )
        try:
            await recorder.record(
                "execution.failed",
                RunFinished(
                    run_id=execution.id,
                    outcome="failed",
                    error=ErrorBody(code=code, message=message),
                    agent_id=execution.agent_id,
                ),
            )
        except ConcurrencyConflict:
            return await self._after_conflict(execution.id, execution.attempts)
        return ACK


async def _unsubscribe(sub: Any) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


class _QueuedSweep(Follower):
    """Reads the store once at start-up to find executions left ``queued``."""

    name = "executions-sweep"

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._executions: dict[str, Execution] = {}

    def fold(self, event: Event) -> None:
        """Fold execution events; skip the rest."""
        if not event.stream.startswith("execution-"):
            return
        self._executions[event.subject] = evolve(self._executions.get(event.subject), event)

    def queued(self) -> list[Execution]:
        """Executions waiting for a worker."""
        return [e for e in self._executions.values() if e.status == "queued"]
