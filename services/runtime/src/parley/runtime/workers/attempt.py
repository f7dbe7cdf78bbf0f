"""One attempt of an execution: build the run, run it bounded, record how it ended.

The worker owns the stream while it runs: each step is decided by the aggregate
(:class:`~parley.aggregates.execution.Record`), which refuses once the attempt no longer
owns the execution (a cancel, or another worker, wrote in between); the attempt then stops
without recording a second outcome.

A retryable failure (provider errors, and a stream broken mid-answer: the partial answer is
not a recorded step, so the next attempt asks again) is retried after
``retry_backoff_seconds * 2**(n-1)`` while the attempts since the last request or answer are
under ``options.max_attempts`` (:func:`~parley.aggregates.execution.retry_delay`); a crash
counts as an attempt too. ``timeout_seconds`` bounds each attempt (a parked execution does
not run down its clock while a person decides).
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from parley.aggregates.execution import Execution
from parley.aggregates.execution import Finish
from parley.aggregates.execution import Record
from parley.aggregates.execution import Superseded
from parley.aggregates.execution import decide
from parley.aggregates.execution import retry_delay
from parley.aggregates.journal import Journal
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import ExecutionInputRequired
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import RunVersion
from parley.contracts.runtime import execution_stream
from parley.runtime.decisions import Envelope
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.domain import Effective
from parley.runtime.domain import input_text
from parley.runtime.errors import RuntimeFault
from parley.runtime.errors import error_body
from parley.runtime.recording import NullSink
from parley.runtime.run_loop import InputRequired
from parley.runtime.run_loop import Interrupted
from parley.runtime.run_loop import Run
from parley.runtime.run_setup import RunTally
from parley.runtime.run_setup import build_run
from parley.runtime.strategies import run_strategy

__all__ = ["ACK", "Attempt", "Verdict", "envelope_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What to do with a work item: acknowledge it, or hand it back after ``delay``."""

    ack: bool
    delay: float = 0.0


ACK = Verdict(True)


class _Deadline(Exception):
    """The attempt ran past ``options.timeout_seconds``."""


def envelope_of(execution: Execution) -> Envelope:
    """What the execution's events carry: its request's correlation and trace."""
    return Envelope(
        execution.id, execution.namespace, execution.correlation_id, execution.traceparent
    )


class AttemptRecorder:
    """Records the run's steps, each decided by the aggregate for this attempt."""

    def __init__(self, deps: Deps, execution: Execution) -> None:
        self.deps, self.execution, self.attempt = deps, execution, execution.attempts

    async def record(self, type: str, payload: msgspec.Struct) -> None:
        """Append one step.

        Raises:
            Superseded: When the attempt no longer owns the execution.
        """
        command = Record(attempt=self.attempt, type=type, payload=payload)
        await execute(
            self.deps.executions,
            execution_stream(self.execution.id),
            decide,
            command,
            envelope_of(self.execution),
        )


class Attempt:
    """One started attempt of an execution (``execution`` is its state after the start)."""

    def __init__(
        self,
        deps: Deps,
        execution: Execution,
        events: Sequence[Event],
        settings: Effective,
        running: dict[str, "asyncio.Task[str]"],
        version: RunVersion,
    ) -> None:
        self.deps, self.execution, self.events = deps, execution, events
        self.settings, self.running = settings, running
        self.version = version
        """The agent's definition the attempt runs on, recorded on its end."""
        self.attempt = execution.attempts
        self.recorder = AttemptRecorder(deps, execution)

    async def run(self) -> Verdict:
        """Run the attempt to its end; the verdict for its work item."""
        execution = self.execution
        tally = RunTally(self.deps.scrubber, execution.id, execution.agent_id)
        try:
            run = await self._build()
        except RuntimeFault as exc:  # e.g. the persona was deleted
            end = RunFinished(
                run_id=execution.id,
                outcome="failed",
                error=exc.to_body(),
                agent_id=execution.agent_id,
            )
            return await self._finish(end)
        task = asyncio.create_task(
            _bounded(run, execution.options.timeout_seconds), name=f"execution-{execution.id}"
        )
        self.running[execution.id] = task
        try:
            return await self._outcome(run, task, tally)
        finally:
            self.running.pop(execution.id, None)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _build(self) -> Run:
        deps, execution = self.deps, self.execution
        return await build_run(
            deps,
            self.settings,
            run_id=execution.id,
            kind="execution",
            namespace=execution.namespace,
            agent_id=execution.agent_id,
            history=(),
            input=input_text(execution.input_data),
            session_id=None,
            files=None,
            hops=0,
            journal=Journal.of(self.events, execution.id),
            recorder=self.recorder,
            sink=NullSink(),
        )

    async def _outcome(self, run: Run, task: "asyncio.Task[str]", tally: RunTally) -> Verdict:
        execution = self.execution
        outcome: Literal["completed", "failed"] = "completed"
        output, error = "", None
        try:
            output = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this runtime is stopping
            return await self._superseded()  # a cancel
        except InputRequired as exc:
            await run.record(
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
        except Superseded:
            return await self._superseded()
        except _Deadline:
            outcome = "failed"
            error = ErrorBody(
                code=ErrorCode.TIMEOUT,
                message=f"the run took longer than {execution.options.timeout_seconds:g}s;"
                " raise options.timeout_seconds",
            )
        except (Interrupted, RuntimeFault) as exc:
            retryable = isinstance(exc, Interrupted) or exc.retryable
            delay = retry_delay(execution, retryable)
            if delay is not None:
                log.warning(
                    "execution %s attempt %d failed (%s); retrying in %gs",
                    execution.id,
                    self.attempt,
                    exc,
                    delay,
                )
                with contextlib.suppress(Exception):  # the next attempt replays what is kept
                    await run.flush()
                return Verdict(False, delay)
            outcome, error = "failed", exc.to_body()
            if isinstance(exc, Interrupted):
                output = exc.partial
        except Exception as exc:  # every other failure ends the execution, recorded
            outcome, error = "failed", error_body(exc)
        return await self._finish(tally.finished(run, outcome, output, error))

    async def _finish(self, finished: RunFinished) -> Verdict:
        """Append the outcome, unless the attempt lost the execution (never a second one)."""
        executed = await execute(
            self.deps.executions,
            execution_stream(self.execution.id),
            decide,
            Finish(
                attempt=self.attempt,
                finished=msgspec.structs.replace(finished, **msgspec.structs.asdict(self.version)),
            ),
            envelope_of(self.execution),
        )
        if executed.outcome.appended:
            return ACK
        return _after(executed.outcome.state, self.attempt)

    async def _superseded(self) -> Verdict:
        """Someone else wrote to the stream: stop unless the execution is still ours to run."""
        stream = execution_stream(self.execution.id)
        loaded = await self.deps.executions.load(stream, fresh=True)
        return _after(loaded.state, self.attempt)


def _after(state: Execution | None, attempt: int) -> Verdict:
    if state is None or not state.runnable or state.attempts > attempt:
        return ACK  # cancelled, finished, parked, or taken over by another attempt
    return Verdict(False, 0.5)


async def _bounded(run: Run, seconds: float) -> str:
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await run_strategy(run)
    except TimeoutError:
        if deadline.expired():
            raise _Deadline from None
        raise
