"""The tasks service's policies that are not aggregates: pure, no I/O.

The aggregates decide (:mod:`parley.aggregates.task`, :mod:`parley.aggregates.grouprun`);
this module says what the service asks of them: who a task's cfp goes to and which agents a
run may use (:func:`candidates`, :func:`check_run_agents`, over an :class:`AgentLookup`),
what an inbox batch, a timer or an undelivered message means to each kind of conversation
(:data:`TASKS`, :data:`RUNS`), and how a task reads in a command's reply (:func:`task_reply`).
"""

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic
from typing import Literal
from typing import Protocol
from typing import TypeVar

from parley.aggregates import grouprun
from parley.aggregates import task
from parley.aggregates.agent import Agent
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.grouprun import Run
from parley.aggregates.mail import Mail
from parley.aggregates.task import Task
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageReply
from parley.contracts.acl import Performative
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import DEFAULT_NAMESPACE
from parley.contracts.registry import AgentState
from parley.contracts.tasks import StartRun
from parley.contracts.tasks import TaskReply
from parley.contracts.tasks import WinningBid
from parley.contracts.tasks import run_stream
from parley.contracts.tasks import task_stream

__all__ = [
    "RUNS",
    "TASKS",
    "AgentLookup",
    "Kind",
    "Rules",
    "Streams",
    "candidates",
    "check_run_agents",
    "failed_deliveries",
    "task_reply",
]

Kind = Literal["task", "run"]
"""The two kinds of conversation: also the prefix of their principals (``task:<id>``)."""

_STREAMS: dict[Kind, Callable[[str, str], str]] = {"task": task_stream, "run": run_stream}

S = TypeVar("S")
C = TypeVar("C")


class AgentLookup(Protocol):
    """The agents a task or run may address (the service's :class:`.directory.Directory`)."""

    def get(self, namespace: str, agent_id: str) -> Agent | None:
        """The live agent ``agent_id`` of ``namespace``, if any."""
        ...

    def match(
        self, namespace: str, capabilities: Sequence[str], min_score: float = 0.0
    ) -> list[str]:
        """Running agents of ``namespace`` with every capability and at least ``min_score``."""
        ...


@dataclass(frozen=True, slots=True)
class Rules(Generic[S, C]):
    """What one kind of conversation (tasks or group runs) is, to the service's shell."""

    kind: Kind
    """Its principals are ``<kind>:<id>``; the watch and the inbox key on it."""
    evolve: Callable[[S | None, Event], S | None]
    decide: Callable[[S | None, C, Context], Decision[Mail]]
    protocol: Literal["fipa-contract-net", "fipa-request"]
    """The ACL protocol of the messages it sends."""
    answers: Callable[[Sequence[AclMessage]], list[C]]
    """An inbox batch of messages to it, as commands."""
    tick: C
    """The command a timer decides."""
    undelivered: Callable[[Sequence[Mail], Sequence[MessageReply | None]], list[C]]
    """What to decide about sent messages that did not reach their receivers."""
    pending: Callable[[S, datetime], list[Mail]]
    """Messages an open conversation must have sent by ``now`` (resent after a restart)."""
    unrecordable: Callable[[str], C]
    """The command that ends the conversation when answers cannot be recorded (why)."""


class Streams:
    """Where each task's (and run's) stream, and its conversation's, is.

    :func:`~parley.contracts.tasks.task_stream` of its namespace and id, except for one
    stored before streams were scoped by namespace: a task of another namespace than
    ``default`` whose events are in ``task-<id>`` (and its messages in ``conversation-<id>``).
    The watch notes those as it folds the store from the start (:meth:`note`).
    """

    def __init__(self) -> None:
        self._unscoped: set[tuple[Kind, str, str]] = set()

    def note(self, kind: Kind, event: Event) -> None:
        """Remember where the task or run ``event`` belongs to is stored."""
        namespace, ident = event.namespace, event.subject
        if namespace != DEFAULT_NAMESPACE and event.stream == _STREAMS[kind](
            DEFAULT_NAMESPACE, ident
        ):
            self._unscoped.add((kind, namespace, ident))

    def of(self, kind: Kind, namespace: str, ident: str) -> str:
        """The stream of the task or run ``ident`` of ``namespace``."""
        return _STREAMS[kind](self._scope(kind, namespace, ident), ident)

    def conversation(self, kind: Kind, namespace: str, ident: str) -> str:
        """The stream of its messages (the conversation is named after it)."""
        return conversation_stream(self._scope(kind, namespace, ident), ident)

    def _scope(self, kind: Kind, namespace: str, ident: str) -> str:
        return DEFAULT_NAMESPACE if (kind, namespace, ident) in self._unscoped else namespace


def failed_deliveries(reply: MessageReply | None, receivers: Sequence[str]) -> dict[str, str]:
    """Receivers a send did not reach, with why (all of them when the send failed)."""
    if reply is None:
        return dict.fromkeys(receivers, "the messaging service is unavailable")
    if not reply.ok:
        why = f"{reply.error.code}: {reply.error.message}" if reply.error else "refused"
        return dict.fromkeys(receivers, why)
    return {
        d.receiver: f"{d.code or 'failed'}: {d.reason or 'not delivered'}"
        for d in reply.deliveries
        if d.status == "failed"
    }


# --- tasks -------------------------------------------------------------------------------


def _task_answers(messages: Sequence[AclMessage]) -> list[task.Command]:
    return [
        task.Reply(
            performative=str(m.performative),
            sender=m.sender,
            message_id=m.message_id,
            content=m.content,
            reply_with=m.reply_with,
            sent_at=m.sent_at,
        )
        for m in messages
    ]


def _undelivered(
    mail: Sequence[Mail], replies: Sequence[MessageReply | None], performative: Performative
) -> list[tuple[Mail, dict[str, str]]]:
    """The messages of ``performative`` some receivers did not get, with who and why."""
    found = []
    for message, reply in zip(mail, replies, strict=True):
        if message.performative == performative:
            failed = failed_deliveries(reply, message.receivers)
            if failed:
                found.append((message, failed))
    return found


def _task_undelivered(
    mail: Sequence[Mail], replies: Sequence[MessageReply | None]
) -> list[task.Command]:
    """A cfp that did not reach a candidate is that candidate's refusal."""
    return [
        task.Undeliverable(reasons=failed)
        for _, failed in _undelivered(mail, replies, Performative.CFP)
    ]


def _task_pending(state: Task, now: datetime) -> list[Mail]:
    """A cfp whose round has closed is not worth sending any more."""
    return [
        m
        for m in task.pending_mail(state)
        if m.performative != Performative.CFP
        or (state.reply_by is not None and state.reply_by > now)
    ]


TASKS: Rules[Task, task.Command] = Rules(
    kind="task",
    evolve=task.evolve,
    decide=task.decide,
    protocol="fipa-contract-net",
    answers=_task_answers,
    tick=task.Tick(),
    undelivered=_task_undelivered,
    pending=_task_pending,
    unrecordable=lambda why: task.Cancel(reason=why),
)
"""The Contract Net's tasks."""


def candidates(state: Task, agents: AgentLookup) -> tuple[list[str], str]:
    """A task's cfp receivers, and the failure reason when there are none.

    Named participants must all exist and run; otherwise the running agents with every
    required capability and at least the required performance score.

    Raises:
        ParleyError: A named participant is unknown (``AGENT_NOT_FOUND``) or not running
            (``AGENT_NOT_RUNNING``).
    """
    spec = state.spec
    if spec.participants:
        _require_running(
            agents,
            state.namespace,
            spec.participants,
            missing=lambda a: f"participant {a} is not an agent of namespace {state.namespace}",
            stopped=lambda a, now: f"participant {a} is {now}; start it first",
        )
        return list(dict.fromkeys(spec.participants)), ""
    wanted = spec.requirements or None
    capabilities = wanted.capabilities if wanted else []
    min_score = wanted.min_performance_score if wanted else 0.0
    found = agents.match(state.namespace, capabilities, min_score)
    reason = "no running agent has " + (
        f"the capabilities {', '.join(capabilities)}" if capabilities else "been found"
    )
    if min_score:
        reason += f" with a performance score of at least {min_score:g}"
    return found, reason


def task_reply(state: Task, version: int, position: int) -> TaskReply:
    """A tasks command's reply: the task as it stands after the command."""
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


# --- group runs --------------------------------------------------------------------------


def _run_answers(messages: Sequence[AclMessage]) -> list[grouprun.Command]:
    return [
        grouprun.RunReply(
            performative=str(m.performative),
            sender=m.sender,
            in_reply_to=m.in_reply_to,
            content=m.content,
        )
        for m in messages
    ]


def _run_undelivered(
    mail: Sequence[Mail], replies: Sequence[MessageReply | None]
) -> list[grouprun.Command]:
    """A request that did not reach its agent is that agent's failure."""
    return [
        grouprun.RunReply(
            performative="failure",
            sender=agent,
            in_reply_to=message.message_id,
            content={"reason": f"not delivered: {why}"},
        )
        for message, failed in _undelivered(mail, replies, Performative.REQUEST)
        for agent, why in failed.items()
    ]


def _run_pending(state: Run, now: datetime) -> list[Mail]:
    return grouprun.pending_mail(state)


RUNS: Rules[Run, grouprun.Command] = Rules(
    kind="run",
    evolve=grouprun.evolve,
    decide=grouprun.decide,
    protocol="fipa-request",
    answers=_run_answers,
    tick=grouprun.RunTick(),
    undelivered=_run_undelivered,
    pending=_run_pending,
    unrecordable=lambda why: grouprun.Abort(error=why),
)
"""Group runs over a cluster's agents."""


def check_run_agents(cmd: StartRun, agents: AgentLookup) -> None:
    """Every agent of a run must exist and run.

    Raises:
        ParleyError: ``AGENT_NOT_FOUND`` or ``AGENT_NOT_RUNNING``.
    """
    _require_running(
        agents,
        cmd.namespace,
        cmd.agent_ids,
        missing=lambda a: f"cluster {cmd.cluster}'s agent {a} does not exist",
        stopped=lambda a, now: f"cluster {cmd.cluster}'s agent {a} is {now}",
    )


def _require_running(
    agents: AgentLookup,
    namespace: str,
    agent_ids: Sequence[str],
    *,
    missing: Callable[[str], str],
    stopped: Callable[[str, str], str],
) -> None:
    """Raise unless every agent exists in ``namespace`` and runs.

    Args:
        missing: The message for an agent that does not exist (given its id).
        stopped: The message for an agent that does not run (given its id and state).
    """
    for agent_id in agent_ids:
        agent = agents.get(namespace, agent_id)
        if agent is None:
            raise ParleyError(ErrorCode.AGENT_NOT_FOUND, missing(agent_id))
        if agent.state is not AgentState.RUNNING:
            raise ParleyError(ErrorCode.AGENT_NOT_RUNNING, stopped(agent_id, agent.state.value))
