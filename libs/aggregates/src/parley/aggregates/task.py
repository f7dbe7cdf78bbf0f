"""The task aggregate (stream ``task-<id>``): a Contract Net round, pure, no I/O.

``decide(state, command, ctx)`` returns a :class:`Decision`: the events to append and the
ACL messages (:class:`~parley.aggregates.mail.Mail`) to send once they are appended
(``ctx.mint`` makes message ids; the ids of the messages that matter for recovery are recorded
in the events). ``evolve`` folds one recorded event; the tasks service decides on it and the
edge's projection shows it. The service appends at the expected version, so two deciders (two
timers, a restarted process) cannot both end a round: the second one's append conflicts, it
reloads, and deciding again on the new state yields nothing. Bids are ranked by
:mod:`parley.aggregates.award`.
"""

from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec

from parley.aggregates.award import BEST_BID_WEIGHTS
from parley.aggregates.award import Bid
from parley.aggregates.award import rank
from parley.aggregates.award import score
from parley.aggregates.contractnet import TaskDecision
from parley.aggregates.contractnet import cancel_mail
from parley.aggregates.contractnet import cfp_mail
from parley.aggregates.contractnet import close_if_complete
from parley.aggregates.contractnet import contractor_failed
from parley.aggregates.contractnet import pending_mail
from parley.aggregates.contractnet import reject
from parley.aggregates.contractnet import tick
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.fold import Folded
from parley.aggregates.fold import born
from parley.aggregates.mail import Mail
from parley.aggregates.mail import progress_of
from parley.aggregates.mail import reason_of
from parley.contracts.acl import Performative
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.tasks import EVENT_TYPES
from parley.contracts.tasks import AwardStrategy
from parley.contracts.tasks import CfpSent
from parley.contracts.tasks import Proposal
from parley.contracts.tasks import ProposalReceived
from parley.contracts.tasks import TaskAwarded
from parley.contracts.tasks import TaskCancelled
from parley.contracts.tasks import TaskCompleted
from parley.contracts.tasks import TaskCreated
from parley.contracts.tasks import TaskFailed
from parley.contracts.tasks import TaskProgress
from parley.contracts.tasks import TaskRefused
from parley.contracts.tasks import TaskRejected
from parley.contracts.tasks import TaskSpec
from parley.contracts.tasks import TaskStatus
from parley.contracts.tasks import task_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "BEST_BID_WEIGHTS",
    "GRACE",
    "Bid",
    "Cancel",
    "Command",
    "Create",
    "Distribute",
    "Mail",
    "Reply",
    "Task",
    "Tick",
    "Undeliverable",
    "decide",
    "evolve",
    "pending_mail",
    "rank",
    "score",
]

CATEGORY = task_stream.category
"""The stream category this aggregate folds (``task-<id>``)."""
FOLDS: frozenset[str] = frozenset({*EVENT_TYPES})
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

GRACE = timedelta(milliseconds=250)
"""After ``reply-by``, how long the round stays open for proposals already on their way
(a proposal counts when it was *sent* by ``reply-by``)."""
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
_P = Performative


# --- state -------------------------------------------------------------------------------


class Task(Folded, frozen=True, kw_only=True):
    """A task as folded from its stream."""

    id: str
    """The task id (the stream is ``task-<id>``)."""
    spec: TaskSpec
    """What is to be done, by whom."""
    status: TaskStatus
    """Where the round stands."""
    updated_at: datetime
    """Time of the last folded event of a known type."""
    strategy: AwardStrategy | None = None
    """How the round's bids are ranked (set by the cfp)."""
    candidates: tuple[str, ...] = ()
    """Agents the cfp went to."""
    cfp_message_id: str | None = None
    """Id of the cfp."""
    reply_by: datetime | None = None
    """When proposals are due."""
    bids: dict[str, Bid] = {}
    """Agent → its proposal, in arrival order."""
    refusals: dict[str, str] = {}
    """Agent → why it refused (or why the cfp did not reach it)."""
    rejected: dict[str, str] = {}
    """Agent → reason (`lost`, `late`, `invalid`)."""
    reject_messages: dict[str, str] = {}
    """Agent → id of the `reject-proposal` it was sent."""
    failures: dict[str, str] = {}
    """Contractors that failed (or ran out of time) → why."""
    round: int = 0
    """Award round: 1 for the first award, +1 for each re-award after a failure."""
    contractor: str | None = None
    """The agent awarded last."""
    award_message_id: str | None = None
    """Id of the last ``accept-proposal``."""
    awarded_at: datetime | None = None
    """Time of the last award."""
    award_score: float | None = None
    """The awarded bid's score."""
    result: Any = None
    """The contractor's result."""
    progress: float | None = None
    """Percent done, as the contractor last reported it."""
    progress_note: str = ""
    """The contractor's last progress note."""
    reason: str | None = None
    """Why the task failed or was cancelled."""
    finished_at: datetime | None = None
    """When it completed, failed or was cancelled."""

    @property
    def finished(self) -> bool:
        """Completed, failed or cancelled."""
        return self.status in TERMINAL

    @property
    def answered(self) -> set[str]:
        """Candidates that proposed or refused (or whose answer was rejected)."""
        return {*self.bids, *self.refusals, *self.rejected} & set(self.candidates)

    @property
    def deadline(self) -> datetime | None:
        """When the next timer is due: the round's close, or the contractor's time limit."""
        if self.status == "announced" and self.reply_by is not None:
            return self.reply_by + GRACE
        if self.status == "awarded" and self.awarded_at is not None:
            return self.awarded_at + timedelta(seconds=self.spec.timeout_seconds)
        return None


def evolve(state: Task | None, event: Event) -> Task | None:
    """Fold one recorded event into a task (unknown types only advance the version)."""
    if event.type == "task.created":
        created = msgspec.convert(event.data, TaskCreated)
        return Task(
            id=created.task_id,
            spec=created.spec,
            status="created",
            updated_at=event.time,
            **born(event),
        )
    if state is None:
        return None
    payload_type = EVENT_TYPES.get(event.type)
    bump: dict[str, Any] = {"version": event.version, "updated_at": event.time}
    if payload_type is None:
        return msgspec.structs.replace(state, version=event.version)
    data = msgspec.convert(event.data, payload_type)
    match data:
        case CfpSent():
            bump |= {
                "status": "announced",
                "strategy": data.strategy,
                "candidates": tuple(data.candidates),
                "cfp_message_id": data.message_id,
                "reply_by": data.reply_by,
            }
        case ProposalReceived():
            bid = Bid(
                agent_id=data.agent_id,
                proposal=data.proposal,
                message_id=data.message_id,
                reply_with=data.reply_with,
                order=len(state.bids),
                received_at=event.time,
            )
            bump["bids"] = {**state.bids, data.agent_id: bid}
        case TaskRefused():
            bump["refusals"] = {**state.refusals, data.agent_id: data.reason}
        case TaskRejected():
            bump["rejected"] = {**state.rejected, data.agent_id: data.reason}
            if data.message_id:
                bump["reject_messages"] = {**state.reject_messages, data.agent_id: data.message_id}
        case TaskAwarded():
            failures = state.failures
            if state.contractor is not None and data.previous_failure is not None:
                failures = {**failures, state.contractor: data.previous_failure}
            bump |= {
                "status": "awarded",
                "round": data.round,
                "contractor": data.agent_id,
                "award_message_id": data.message_id,
                "awarded_at": event.time,
                "award_score": data.score,
                "failures": failures,
                "progress": None,
                "progress_note": "",
            }
        case TaskProgress():
            bump |= {"progress": data.percent, "progress_note": data.note}
        case TaskCompleted():
            bump |= {"status": "completed", "result": data.result, "finished_at": event.time}
        case TaskFailed():
            bump |= {
                "status": "failed",
                "reason": data.reason,
                "failures": {**state.failures, **data.failures},
                "refusals": {**state.refusals, **data.refusals},
                "finished_at": event.time,
            }
        case TaskCancelled():
            bump |= {"status": "cancelled", "reason": data.reason, "finished_at": event.time}
    return msgspec.structs.replace(state, **bump)


# --- commands ----------------------------------------------------------------------------


class Create(msgspec.Struct, frozen=True, kw_only=True):
    """Record a new task."""

    task_id: str
    spec: TaskSpec


class Distribute(msgspec.Struct, frozen=True, kw_only=True):
    """Announce the task to ``candidates`` (resolved by the service)."""

    candidates: tuple[str, ...]
    strategy: AwardStrategy
    max_wait_seconds: float
    no_candidates_reason: str = "no agent matches the task's requirements"


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """An ACL message to the task (from the inbox)."""

    performative: str
    sender: str
    message_id: str
    content: Any = None
    reply_with: str | None = None
    sent_at: datetime | None = None


class Undeliverable(msgspec.Struct, frozen=True, kw_only=True):
    """The messaging service could not deliver the cfp to these agents (agent → why)."""

    reasons: dict[str, str]


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """A timer fired: close the round, or fail a contractor past its time limit."""


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel the task."""

    reason: str | None = None


Command = Create | Distribute | Reply | Undeliverable | Tick | Cancel
_NOTHING: TaskDecision = Decision()


def decide(state: Task | None, command: Command, ctx: Context) -> TaskDecision:
    """What ``command`` does to the task at ``ctx.now``.

    Raises:
        ParleyError: ``TASK_NOT_FOUND``, ``CONCURRENCY_CONFLICT`` (the id is taken) or
            ``INVALID_STATE_TRANSITION``.
    """
    if isinstance(command, Create):
        if state is not None:
            raise ParleyError(
                ErrorCode.CONCURRENCY_CONFLICT, f"task id {command.task_id!r} is taken"
            )
        return Decision(
            events=[("task.created", TaskCreated(task_id=command.task_id, spec=command.spec))]
        )
    if state is None:
        raise ParleyError(ErrorCode.TASK_NOT_FOUND, "no such task")
    match command:
        case Distribute():
            return _distribute(state, command, ctx)
        case Reply():
            return _reply(state, command, ctx)
        case Undeliverable():
            return _undeliverable(state, command, ctx)
        case Tick():
            return tick(state, ctx)
        case Cancel():
            return _cancel(state, command, ctx)
    raise TypeError(f"unknown command {command!r}")


def _distribute(state: Task, cmd: Distribute, ctx: Context) -> TaskDecision:
    if state.status != "created":
        raise ParleyError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"task {state.id} is {state.status}; only a created task can be distributed",
        )
    if not cmd.candidates:
        failed = TaskFailed(task_id=state.id, reason=cmd.no_candidates_reason)
        return Decision(events=[("task.failed", failed)])
    message_id = ctx.mint()
    reply_by = ctx.now + timedelta(seconds=cmd.max_wait_seconds)
    cfp = CfpSent(
        task_id=state.id,
        candidates=list(dict.fromkeys(cmd.candidates)),
        strategy=cmd.strategy,
        reply_by=reply_by,
        message_id=message_id,
    )
    announced = msgspec.structs.replace(
        state,
        status="announced",
        strategy=cmd.strategy,
        candidates=tuple(cfp.candidates),
        cfp_message_id=message_id,
        reply_by=reply_by,
    )
    return Decision(events=[("task.cfp_sent", cfp)], effects=[cfp_mail(announced)])


def _reply(state: Task, reply: Reply, ctx: Context) -> TaskDecision:
    agent = reply.sender
    performative = reply.performative
    if performative == _P.PROPOSE:
        return _propose(state, reply, ctx)
    if performative in (_P.REFUSE, _P.NOT_UNDERSTOOD):
        if state.status != "announced" or agent not in state.candidates:
            return _NOTHING
        if agent in state.answered:
            return _NOTHING
        reason = reason_of(reply.content, default=performative)
        events: Decided = [
            ("task.refused", TaskRefused(task_id=state.id, agent_id=agent, reason=reason))
        ]
        return close_if_complete(_with_refusal(state, agent, reason), events, ctx)
    if performative in (_P.INFORM, _P.FAILURE):
        if state.status != "awarded" or agent != state.contractor:
            return _NOTHING  # a late answer of a replaced contractor, or noise
        if performative == _P.FAILURE:
            return contractor_failed(state, reason_of(reply.content, default="failure"), ctx)
        content = reply.content
        if isinstance(content, dict) and "progress" in content and "result" not in content:
            progress = progress_of(content)
            if progress is None:
                return _NOTHING
            percent, note = progress
            event = TaskProgress(task_id=state.id, agent_id=agent, percent=percent, note=note)
            return Decision(events=[("task.progress", event)])
        result = content.get("result") if isinstance(content, dict) else content
        done = TaskCompleted(task_id=state.id, agent_id=agent, result=result)
        return Decision(events=[("task.completed", done)])
    return _NOTHING


def _propose(state: Task, reply: Reply, ctx: Context) -> TaskDecision:
    agent = reply.sender
    if agent not in state.candidates or agent in state.answered:
        return _NOTHING  # not asked, or a redelivered/second answer
    if state.status == "created":
        return _NOTHING
    sent = reply.sent_at or ctx.now
    on_time = state.status == "announced" and state.reply_by is not None and sent <= state.reply_by
    answer_to = reply.reply_with or reply.message_id
    if not on_time:
        return reject(state, agent, "late", answer_to, ctx)
    try:
        proposal = msgspec.convert(reply.content, Proposal)
    except msgspec.ValidationError:
        return reject(state, agent, "invalid", answer_to, ctx)
    received = ProposalReceived(
        task_id=state.id,
        agent_id=agent,
        proposal=proposal,
        message_id=reply.message_id,
        reply_with=reply.reply_with,
    )
    bid = Bid(
        agent_id=agent,
        proposal=proposal,
        message_id=reply.message_id,
        reply_with=reply.reply_with,
        order=len(state.bids),
        received_at=ctx.now,
    )
    after = msgspec.structs.replace(state, bids={**state.bids, agent: bid})
    return close_if_complete(after, [("task.proposal_received", received)], ctx)


def _undeliverable(state: Task, cmd: Undeliverable, ctx: Context) -> TaskDecision:
    if state.status != "announced":
        return _NOTHING
    events: Decided = []
    after = state
    for agent, why in cmd.reasons.items():
        if agent in state.candidates and agent not in after.answered:
            reason = f"not delivered: {why}"
            events.append(
                ("task.refused", TaskRefused(task_id=state.id, agent_id=agent, reason=reason))
            )
            after = _with_refusal(after, agent, reason)
    if not events:
        return _NOTHING
    return close_if_complete(after, events, ctx)


def _cancel(state: Task, cmd: Cancel, ctx: Context) -> TaskDecision:
    if state.finished:
        raise ParleyError(
            ErrorCode.INVALID_STATE_TRANSITION, f"task {state.id} is already {state.status}"
        )
    contractor = state.contractor if state.status == "awarded" else None
    message_id = ctx.mint() if contractor else None
    event = TaskCancelled(
        task_id=state.id, reason=cmd.reason, contractor=contractor, message_id=message_id
    )
    mail = []
    if contractor and message_id:
        mail.append(cancel_mail(state, contractor, message_id, cmd.reason or "cancelled"))
    return Decision(events=[("task.cancelled", event)], effects=mail)


def _with_refusal(state: Task, agent: str, reason: str) -> Task:
    return msgspec.structs.replace(state, refusals={**state.refusals, agent: reason})
