"""The tasks service's command table: create, distribute and cancel a task, start a group run.

Each handler decodes nothing itself (the route does), checks what only the service can know
(the task is visible in the caller's namespace, the agents exist and run), decides through
:class:`~parley.tasks.conversations.Conversations` and replies a :class:`TaskReply`. Every
exception becomes an error reply in one place (:func:`reply_error`).
"""

import logging
from typing import TypeVar

from parley.aggregates import grouprun
from parley.aggregates import task
from parley.aggregates.grouprun import Run
from parley.aggregates.task import Task
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.tasks import CancelTask
from parley.contracts.tasks import CreateTask
from parley.contracts.tasks import DistributeTask
from parley.contracts.tasks import StartRun
from parley.contracts.tasks import TaskReply
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Outcome
from parley.kit.app import Route
from parley.kit.errors import error_body_for
from parley.tasks.conversations import Conversations
from parley.tasks.directory import Directory
from parley.tasks.domain import candidates
from parley.tasks.domain import check_run_agents
from parley.tasks.domain import task_reply
from parley.tasks.settings import TasksSettings
from parley.tasks.workers.watch import Watch

__all__ = ["ROUTES", "Tasks", "reply_error"]

log = logging.getLogger(__name__)

_DIRECTORY_WAIT_S = 2.0
"""How long a command waits for the directory to reach the caller's ``min_position``."""

S = TypeVar("S")


class Tasks:
    """The process's command handlers, built once its connections are open."""

    def __init__(
        self,
        tasks: Conversations[Task, task.Command],
        runs: Conversations[Run, grouprun.Command],
        directory: Directory,
        watch: Watch,
        settings: TasksSettings,
    ) -> None:
        self.tasks, self.runs = tasks, runs
        self.directory, self.watch, self.settings = directory, watch, settings

    async def create_task(self, cmd: CreateTask) -> TaskReply:
        """Record a task (status ``created``)."""
        task_id = cmd.task_id or new_id()
        create = task.Create(task_id=task_id, spec=cmd.spec)
        outcome = await self.tasks.command(task_id, cmd, create, new=True)
        return TaskReply(
            ok=True,
            task_id=task_id,
            status="created",
            version=outcome.version,
            position=outcome.position,
        )

    async def distribute_task(self, cmd: DistributeTask) -> TaskReply:
        """Send the cfp to the candidates; answer at once, or when the round ends (``wait``)."""
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, _DIRECTORY_WAIT_S)
        current = await self._visible(cmd.task_id, cmd.namespace)
        receivers, reason = candidates(current, self.directory)
        distribute = task.Distribute(
            candidates=tuple(receivers),
            strategy=cmd.strategy,
            max_wait_seconds=cmd.max_wait_seconds,
            no_candidates_reason=reason,
        )
        outcome = await self.tasks.command(cmd.task_id, cmd, distribute)
        state = _state(outcome)
        version, position = outcome.version, outcome.position
        if cmd.wait and state.status == "announced":
            within = cmd.max_wait_seconds + self.settings.tasks_wait_slack
            await self.watch.wait_for(position, _DIRECTORY_WAIT_S)
            settled: Loaded[Task] | None = await self.watch.settled(
                "task", cmd.namespace, cmd.task_id, within
            )
            if settled is None:  # already finished (and dropped), or out of time
                stream = self.tasks.stream(cmd.namespace, cmd.task_id)
                settled = await self.tasks.repository.load(stream, fresh=True)
            if settled.state is not None:
                state, version, position = settled.state, settled.version, settled.position
        return task_reply(state, version, position)

    async def cancel_task(self, cmd: CancelTask) -> TaskReply:
        """Cancel the task; its contractor, if any, gets a FIPA ``cancel``."""
        await self._visible(cmd.task_id, cmd.namespace)
        outcome = await self.tasks.command(cmd.task_id, cmd, task.Cancel(reason=cmd.reason))
        return task_reply(_state(outcome), outcome.version, outcome.position)

    async def start_run(self, cmd: StartRun) -> TaskReply:
        """Record a group run and send its first requests.

        Raises:
            ParleyError: an agent is unknown or not running, or too few for the strategy.
        """
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, _DIRECTORY_WAIT_S)
        check_run_agents(cmd, self.directory)
        run_id = cmd.run_id or new_id()
        start = grouprun.Start(
            run_id=run_id,
            cluster=cmd.cluster,
            strategy=cmd.strategy,
            agent_ids=tuple(cmd.agent_ids),
            input=cmd.input,
            budget=cmd.budget,
            timeout_seconds=cmd.timeout_seconds,
        )
        outcome = await self.runs.command(run_id, cmd, start, new=True)
        return TaskReply(
            ok=True,
            run_id=run_id,
            status=_state(outcome).status,
            version=outcome.version,
            position=outcome.position,
        )

    async def _visible(self, task_id: str, namespace: str) -> Task:
        """The task as stored, if it exists in ``namespace``.

        Raises:
            ParleyError: ``TASK_NOT_FOUND``.
        """
        loaded = await self.tasks.repository.load(self.tasks.stream(namespace, task_id), fresh=True)
        if loaded.state is None or loaded.state.namespace != namespace:
            raise ParleyError(
                ErrorCode.TASK_NOT_FOUND, f"no task {task_id} in namespace {namespace}"
            )
        return loaded.state


def _state(outcome: Outcome[S]) -> S:
    """The state after a command that found or made its aggregate."""
    if outcome.state is None:
        raise RuntimeError("a command on an aggregate left no state")
    return outcome.state


def reply_error(exc: Exception) -> TaskReply:
    """The error reply for an exception raised decoding or handling a command."""
    return TaskReply(ok=False, error=error_body_for(exc, log=log))


ROUTES: dict[str, Route[Tasks]] = {
    "create_task": (CreateTask, Tasks.create_task),
    "distribute_task": (DistributeTask, Tasks.distribute_task),
    "cancel_task": (CancelTask, Tasks.cancel_task),
    "start_run": (StartRun, Tasks.start_run),
}
"""Verb → (command type, handler)."""
