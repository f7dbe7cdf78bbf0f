"""The Contract Net round: create, distribute, answers from the inbox, deadlines, cancel.

Every change goes through the task aggregate (:mod:`parley.tasks.task`) and one append at the
stream's expected version; the ACL messages a decision calls for are sent after it. A
round therefore ends exactly once however many deciders race: the answer that completes
the round, the deadline timer of each process following the store (:mod:`.watch`), and a
restarted process catching up — whoever appends ``task.awarded`` or ``task.failed`` first
wins, the others reload and find nothing left to decide.
"""

from collections.abc import Sequence

from parley.contracts.acl import AclMessage, MessageReply, Performative
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.registry import AgentState
from parley.contracts.tasks import (
    CancelTask,
    CreateTask,
    DistributeTask,
    TaskReply,
    WinningBid,
    task_stream,
)
from parley.eventstore import EventStore
from parley.eventstore.kernel import Loaded, load
from parley.tasks import task as domain
from parley.tasks.directory import Directory
from parley.tasks.settings import TasksSettings
from parley.tasks.shell import Conversations, Mailer, failed_deliveries
from parley.tasks.task import Mail, Task, TaskRefusal
from parley.tasks.watch import Watch

__all__ = ["ContractNet"]

_DIRECTORY_WAIT_S = 2.0


class ContractNet(Conversations[Task]):
    """The tasks commands and the round's reactions to answers and deadlines."""

    def __init__(
        self,
        store: EventStore,
        directory: Directory,
        watch: Watch,
        mailer: Mailer,
        settings: TasksSettings,
    ) -> None:
        super().__init__(
            store,
            watch,
            mailer,
            kind="task",
            stream=task_stream,
            evolve=domain.evolve,
            decide=domain.decide,
            protocol="fipa-contract-net",
        )
        self.directory, self.settings = directory, settings

    # --- commands ------------------------------------------------------------------------

    async def create(self, cmd: CreateTask) -> TaskReply:
        """Record a task (status ``created``)."""
        task_id = cmd.task_id or new_id()
        outcome = await self._decide(
            task_id,
            cmd.namespace,
            [domain.Create(task_id=task_id, spec=cmd.spec)],
            loaded=Loaded(None, 0, 0),
            correlation=cmd.request_id,
            traceparent=cmd.traceparent,
        )
        return TaskReply(
            ok=True,
            task_id=task_id,
            status="created",
            version=outcome.version,
            position=outcome.position,
        )

    async def distribute(self, cmd: DistributeTask) -> TaskReply:
        """Send the cfp to the candidates; answer at once, or when the round ends (``wait``)."""
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, _DIRECTORY_WAIT_S)
        current = await self._visible(cmd.task_id, cmd.namespace)
        assert current.state is not None
        candidates, reason = self._candidates(current.state)
        outcome = await self._decide(
            cmd.task_id,
            cmd.namespace,
            [
                domain.Distribute(
                    candidates=tuple(candidates),
                    strategy=cmd.strategy,
                    max_wait_seconds=cmd.max_wait_seconds,
                    no_candidates_reason=reason,
                )
            ],
            loaded=current,
            correlation=cmd.request_id,
            traceparent=cmd.traceparent,
        )
        state: Task = outcome.state
        version, position = outcome.version, outcome.position
        if cmd.wait and state.status == "announced":
            within = cmd.max_wait_seconds + self.settings.tasks_wait_slack
            await self.watch.wait_for(position, _DIRECTORY_WAIT_S)
            settled = await self.watch.settled("task", cmd.task_id, within)
            if settled is None:  # already finished (and dropped), or out of time
                settled = await load(self.store, task_stream(cmd.task_id), domain.evolve)
            if settled.state is not None:
                state, version, position = settled.state, settled.version, settled.position
        return _reply(state, version, position)

    async def cancel(self, cmd: CancelTask) -> TaskReply:
        """Cancel the task; its contractor, if any, gets a FIPA ``cancel``."""
        current = await self._visible(cmd.task_id, cmd.namespace)
        outcome = await self._decide(
            cmd.task_id,
            cmd.namespace,
            [domain.Cancel(reason=cmd.reason)],
            loaded=current,
            correlation=cmd.request_id,
            traceparent=cmd.traceparent,
        )
        return _reply(outcome.state, outcome.version, outcome.position)

    # --- reactions -----------------------------------------------------------------------

    async def on_messages(self, task_id: str, messages: Sequence[AclMessage]) -> None:
        """Fold the answers of one inbox batch to a task into one append.

        Raises:
            TaskRefusal: ``TASK_NOT_FOUND`` for a task that does not exist (drop the items).
        """
        replies = [
            domain.Reply(
                performative=str(m.performative),
                sender=m.sender,
                message_id=m.message_id,
                content=m.content,
                reply_with=m.reply_with,
                sent_at=m.sent_at,
            )
            for m in messages
        ]
        await self._decide(task_id, messages[0].namespace, replies, correlation=task_id)

    async def on_due(self, task_id: str) -> None:
        """A deadline passed: close the round, or re-award from a contractor out of time."""
        cached = self.watch.cached("task", task_id)
        if cached is None:
            return
        await self._decide(task_id, cached.state.namespace, [domain.Tick()], correlation=task_id)

    async def recover(self) -> None:
        """Send what open tasks should have sent but did not (a process died in between)."""
        now = utcnow()
        for state in self.watch.open_tasks():
            pending = [
                m
                for m in domain.pending_mail(state)
                if m.performative != Performative.CFP
                or (state.reply_by is not None and state.reply_by > now)
            ]
            if pending:
                await self._resend(state, pending, "message(s)")

    # --- internals -----------------------------------------------------------------------

    async def _visible(self, task_id: str, namespace: str) -> Loaded[Task]:
        loaded = await load(self.store, task_stream(task_id), domain.evolve)
        if loaded.state is None or loaded.state.namespace != namespace:
            raise TaskRefusal(
                ErrorCode.TASK_NOT_FOUND, f"no task {task_id} in namespace {namespace}"
            )
        return loaded

    def _candidates(self, state: Task) -> tuple[list[str], str]:
        """The cfp's receivers, and the failure reason when there are none.

        Raises:
            TaskRefusal: a named participant is unknown (``AGENT_NOT_FOUND``) or not running.
        """
        spec = state.spec
        if spec.participants:
            for agent_id in spec.participants:
                agent = self.directory.get(state.namespace, agent_id)
                if agent is None:
                    raise TaskRefusal(
                        ErrorCode.AGENT_NOT_FOUND,
                        f"participant {agent_id} is not an agent of namespace {state.namespace}",
                    )
                if agent.state is not AgentState.RUNNING:
                    raise TaskRefusal(
                        ErrorCode.AGENT_NOT_RUNNING,
                        f"participant {agent_id} is {agent.state.value}; start it first",
                    )
            return list(dict.fromkeys(spec.participants)), ""
        wanted = spec.requirements or None
        capabilities = wanted.capabilities if wanted else []
        min_score = wanted.min_performance_score if wanted else 0.0
        found = self.directory.match(state.namespace, capabilities, min_score)
        reason = "no running agent has " + (
            f"the capabilities {', '.join(capabilities)}" if capabilities else "been found"
        )
        if min_score:
            reason += f" with a performance score of at least {min_score:g}"
        return found, reason

    async def _undelivered(
        self, state: Task, mail: list[Mail], replies: list[MessageReply | None]
    ) -> None:
        for message, reply in zip(mail, replies, strict=True):
            if message.performative != Performative.CFP:
                continue
            failed = failed_deliveries(reply, message.receivers)
            if failed:
                await self._decide(
                    state.id, state.namespace, [domain.Undeliverable(reasons=failed)]
                )


def _reply(state: Task, version: int, position: int) -> TaskReply:
    bid = state.bids.get(state.contractor) if state.contractor else None
    winning = None
    if bid is not None:
        winning = WinningBid(
            agent_id=bid.agent_id,
            estimated_time_s=bid.proposal.estimated_time_s,
            cost=bid.proposal.cost,
            confidence=bid.proposal.confidence,
            score=state.award_score or 0.0,
        )
    return TaskReply(
        ok=True,
        task_id=state.id,
        status=state.status,
        assigned_to=state.contractor,
        proposals_received=len(state.bids) if state.status != "created" else None,
        winning_bid=winning,
        reason=state.reason,
        version=version,
        position=position,
    )
