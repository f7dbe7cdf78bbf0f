"""Group runs over a cluster's agents: start, answers from the inbox, timeout.

Requests go through the messaging service (sender ``run:<id>``, conversation = run id,
protocol ``fipa-request``, ``reply-with`` = the message id); answers come back on the tasks
inbox like the Contract Net's, so a run survives a restart of this service. Each change is
one append at the expected version (:mod:`parley.tasks.grouprun` decides), and the requests
or cancels it calls for are sent after it.
"""

from collections.abc import Sequence

from parley.contracts.acl import AclMessage, MessageReply
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.registry import AgentState
from parley.contracts.tasks import StartRun, TaskReply, run_stream
from parley.eventstore import EventStore
from parley.eventstore.kernel import Loaded
from parley.tasks import grouprun as domain
from parley.tasks.directory import Directory
from parley.tasks.grouprun import Run
from parley.tasks.shell import Conversations, Mailer, failed_deliveries
from parley.tasks.task import Mail, TaskRefusal
from parley.tasks.watch import Watch

__all__ = ["GroupRuns"]

_DIRECTORY_WAIT_S = 2.0


class GroupRuns(Conversations[Run]):
    """Starts runs and moves them on as their agents answer."""

    def __init__(self, store: EventStore, directory: Directory, watch: Watch, mailer: Mailer):
        super().__init__(
            store,
            watch,
            mailer,
            kind="run",
            stream=run_stream,
            evolve=domain.evolve,
            decide=domain.decide,
            protocol="fipa-request",
        )
        self.directory = directory

    async def start(self, cmd: StartRun) -> TaskReply:
        """Record the run and send its first requests.

        Raises:
            TaskRefusal: an agent is unknown or not running, or too few for the strategy.
        """
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, _DIRECTORY_WAIT_S)
        for agent_id in cmd.agent_ids:
            agent = self.directory.get(cmd.namespace, agent_id)
            if agent is None:
                raise TaskRefusal(
                    ErrorCode.AGENT_NOT_FOUND,
                    f"cluster {cmd.cluster}'s agent {agent_id} does not exist",
                )
            if agent.state is not AgentState.RUNNING:
                raise TaskRefusal(
                    ErrorCode.AGENT_NOT_RUNNING,
                    f"cluster {cmd.cluster}'s agent {agent_id} is {agent.state.value}",
                )
        run_id = cmd.run_id or new_id()
        start = domain.Start(
            run_id=run_id,
            cluster=cmd.cluster,
            strategy=cmd.strategy,
            agent_ids=tuple(cmd.agent_ids),
            input=cmd.input,
            budget=cmd.budget,
            timeout_seconds=cmd.timeout_seconds,
        )
        outcome = await self._decide(
            run_id,
            cmd.namespace,
            [start],
            loaded=Loaded(None, 0, 0),
            correlation=cmd.request_id,
            traceparent=cmd.traceparent,
        )
        return TaskReply(
            ok=True,
            run_id=run_id,
            status=outcome.state.status,
            version=outcome.version,
            position=outcome.position,
        )

    async def on_messages(self, run_id: str, messages: Sequence[AclMessage]) -> None:
        """Fold one inbox batch of answers to a run into one append."""
        replies = [
            domain.RunReply(
                performative=str(m.performative),
                sender=m.sender,
                in_reply_to=m.in_reply_to,
                content=m.content,
            )
            for m in messages
        ]
        await self._decide(run_id, messages[0].namespace, replies, correlation=run_id)

    async def on_due(self, run_id: str) -> None:
        """The run's timeout passed."""
        cached = self.watch.cached("run", run_id)
        if cached is not None:
            await self._decide(run_id, cached.state.namespace, [domain.RunTick()])

    async def recover(self) -> None:
        """Send the requests of running runs that never left (a process died in between)."""
        for state in self.watch.open_runs():
            pending = domain.pending_mail(state)
            if pending:
                await self._resend(state, pending, "request(s)")

    async def _undelivered(
        self, state: Run, mail: list[Mail], replies: list[MessageReply | None]
    ) -> None:
        undelivered: list[domain.RunReply] = []
        for message, reply in zip(mail, replies, strict=True):
            if message.performative != "request":
                continue
            for agent, why in failed_deliveries(reply, message.receivers).items():
                undelivered.append(
                    domain.RunReply(
                        performative="failure",
                        sender=agent,
                        in_reply_to=message.message_id,
                        content={"reason": f"not delivered: {why}"},
                    )
                )
        if undelivered:
            await self._decide(state.id, state.namespace, undelivered)
