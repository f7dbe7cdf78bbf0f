"""Execution commands: trigger, answer, cancel; and queueing an execution for a worker.

``trigger`` appends ``execution.requested`` to ``execution-<id>`` and publishes a work item
(``{"execution_id", "namespace"}``) on ``parley.work.execution`` in the work-queue stream
``PARLEY_WORK``, with ``Nats-Msg-Id`` ``<id>:<version>`` so a republished item is stored
once. The workers (:mod:`parley.runtime.workers.executions`) run it.

The window between the append and the publish (a runtime dying right between them, or NATS
refusing the publish) leaves an execution ``queued`` with no work item. It is covered twice:
a trigger retried with the same ``execution_id`` republishes, and each runtime, when it
starts, sweeps the store for ``queued`` executions and republishes them (``Nats-Msg-Id``
makes that a no-op for items still in the queue; a worker taking a duplicate finds the
execution already started or finished and drops it).
"""

import asyncio
import contextlib
import logging

import msgspec

from parley.aggregates.execution import Execution
from parley.aggregates.execution import ExecutionCommand
from parley.aggregates.execution import Request
from parley.aggregates.execution import StopWorker
from parley.aggregates.execution import decide
from parley.aggregates.execution import evolve
from parley.contracts import subjects
from parley.contracts.ids import new_id
from parley.contracts.runtime import CancelExecution
from parley.contracts.runtime import ExecutionInput
from parley.contracts.runtime import ExecutionRequested
from parley.contracts.runtime import RuntimeReply
from parley.contracts.runtime import TriggerExecution
from parley.contracts.runtime import execution_stream
from parley.eventstore.repository import Outcome
from parley.kit.telemetry import inject
from parley.runtime.adapters.directory import Folded
from parley.runtime.decisions import Envelope
from parley.runtime.decisions import Executed
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.domain import running_agent

__all__ = ["SUBJECT", "ExecutionCommands", "enqueue", "requeue_lost"]

log = logging.getLogger(__name__)

SUBJECT = subjects.work("execution")
_encode = msgspec.json.Encoder().encode


class ExecutionCommands:
    """Triggers, answers and cancels executions."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def trigger(self, cmd: TriggerExecution) -> RuntimeReply:
        """Queue an execution of a running agent; a known ``execution_id`` is idempotent."""
        deps = self.deps
        if cmd.min_position:
            await deps.directory.wait_for(cmd.min_position, 2.0)
        running_agent(deps.directory.get(cmd.agent_id), cmd.agent_id, cmd.namespace)
        await deps.spend.check(cmd.namespace)  # no work queued that could only be refused
        execution_id = cmd.execution_id or new_id()
        requested = ExecutionRequested(
            execution_id=execution_id,
            agent_id=cmd.agent_id,
            trigger=cmd.trigger,
            input_data=cmd.input_data,
            options=cmd.options,
        )
        executed = await self._execute(
            execution_id, Request(namespace=cmd.namespace, requested=requested), cmd
        )
        outcome = executed.outcome
        execution = outcome.state
        assert execution is not None
        if outcome.appended or execution.status == "queued":  # new, or heal a lost publish
            await enqueue(deps, execution.id, execution.namespace, outcome.version)
        return _reply(execution_id, outcome)

    async def answer(self, cmd: ExecutionInput) -> RuntimeReply:
        """Answer the approval request of an ``input_required`` execution; it runs on."""
        outcome = (await self._execute(cmd.execution_id, cmd, cmd)).outcome
        await enqueue(self.deps, cmd.execution_id, cmd.namespace, outcome.version)
        return _reply(cmd.execution_id, outcome)

    async def cancel(self, cmd: CancelExecution) -> RuntimeReply:
        """Cancel a queued, waiting or running execution (its worker stops at once)."""
        executed = await self._execute(cmd.execution_id, cmd, cmd)
        for effect in executed.effects:
            with contextlib.suppress(Exception):
                await self.deps.nc.publish(
                    subjects.control("execution", effect.execution_id), b"cancel"
                )
        return _reply(cmd.execution_id, executed.outcome)

    async def _execute(
        self,
        execution_id: str,
        command: ExecutionCommand,
        cmd: TriggerExecution | ExecutionInput | CancelExecution,
    ) -> Executed[Execution, StopWorker]:
        """Decide ``command`` on the execution; its events carry ``cmd``'s origin."""
        return await execute(
            self.deps.executions,
            execution_stream(execution_id),
            decide,
            command,
            Envelope(execution_id, cmd.namespace, cmd.request_id, cmd.traceparent),
            new=isinstance(command, Request),
        )


def _reply(execution_id: str, outcome: Outcome[Execution]) -> RuntimeReply:
    """The reply to a command the execution recorded: where it now stands."""
    return RuntimeReply(
        ok=True, execution_id=execution_id, version=outcome.version, position=outcome.position
    )


async def enqueue(deps: Deps, execution_id: str, namespace: str, version: int) -> None:
    """Publish the execution's work item (once per version: ``Nats-Msg-Id``)."""
    body = _encode({"execution_id": execution_id, "namespace": namespace})
    headers = inject({"Nats-Msg-Id": f"{execution_id}:{version}"})  # trace and actor go on
    for attempt in range(3):
        try:
            await deps.js.publish(SUBJECT, body, stream=subjects.WORK_STREAM, headers=headers)
            return
        except Exception:
            if attempt == 2:
                # Recorded but not queued: a retried trigger or the next start-up sweep
                # queues it (see the module docstring).
                log.exception("could not queue execution %s", execution_id)
                return
            await asyncio.sleep(0.1 * (attempt + 1))


async def requeue_lost(deps: Deps) -> None:
    """Queue again every execution recorded as ``queued`` (a publish may have been lost)."""
    sweep: Folded[Execution] = Folded(deps.store, "execution", evolve)
    sweep.name = "executions-sweep"
    await sweep.start()
    try:
        if not await sweep.wait_for(sweep.target_position, 60.0):
            log.warning("the start-up sweep of queued executions did not finish in 60s")
            return
    finally:
        await sweep.stop()
    for execution in [e for e in sweep.states.values() if e.status == "queued"]:
        await enqueue(deps, execution.id, execution.namespace, execution.version)
