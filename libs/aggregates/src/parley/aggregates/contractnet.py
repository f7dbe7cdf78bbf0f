"""The Contract Net round of a task: its timer, closing, awarding, re-awarding, its messages.

Part of the task aggregate (:mod:`parley.aggregates.task`), which decides each command and
calls here when a round closes (every candidate answered, or its deadline passed) or a
contractor fails. Bids are ranked by :mod:`parley.aggregates.award`; every message the round
calls for is a :class:`~parley.aggregates.mail.Mail` with an id minted by ``ctx.mint``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import msgspec

from parley.aggregates.award import Bid
from parley.aggregates.award import rank
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.mail import Mail
from parley.contracts.acl import Performative
from parley.contracts.tasks import TaskAwarded
from parley.contracts.tasks import TaskFailed
from parley.contracts.tasks import TaskRejected

if TYPE_CHECKING:  # the task's state; task.py imports this module
    from parley.aggregates.task import Task

__all__ = [
    "TaskDecision",
    "cancel_mail",
    "cfp_mail",
    "close",
    "close_if_complete",
    "contractor_failed",
    "pending_mail",
    "reject",
    "reject_mail",
    "tick",
]

TaskDecision = Decision[Mail]
"""The task's events to append and the ACL messages to send after the append."""
_P = Performative


def tick(state: Task, ctx: Context) -> TaskDecision:
    """A timer fired: close the round at its deadline, or fail a contractor out of time."""
    deadline = state.deadline
    if deadline is None or ctx.now < deadline:
        return Decision()
    if state.status == "announced":
        return close(state, [], ctx)
    limit = f"no result within {state.spec.timeout_seconds:g}s"
    decision = contractor_failed(state, limit, ctx)
    assert state.contractor is not None
    stop = cancel_mail(state, state.contractor, ctx.mint(), limit)
    return Decision(events=decision.events, effects=[stop, *decision.effects])


def reject(
    state: Task, agent: str, reason: Literal["late", "invalid"], answer_to: str, ctx: Context
) -> TaskDecision:
    """Reject a proposal that came after the round closed, or that does not parse."""
    message_id = ctx.mint()
    event = TaskRejected(task_id=state.id, agent_id=agent, reason=reason, message_id=message_id)
    mail = reject_mail(state, agent, message_id, reason, answer_to)
    return Decision(events=[("task.rejected", event)], effects=[mail])


def close_if_complete(state: Task, events: Decided, ctx: Context) -> TaskDecision:
    """Close the round now when every candidate has answered; else just record."""
    if set(state.candidates) <= state.answered:
        return close(state, events, ctx)
    return Decision(events=events)


def close(state: Task, events: Decided, ctx: Context) -> TaskDecision:
    """Award the best proposal and reject the rest, or fail with the refusals."""
    ranked = rank(list(state.bids.values()), state.strategy or "best_bid")
    if not ranked:
        silent = [a for a in state.candidates if a not in state.answered]
        reason = (
            "every candidate refused"
            if state.refusals and not silent
            else "no proposal before the deadline"
        )
        failed = TaskFailed(task_id=state.id, reason=reason, refusals=dict(state.refusals))
        return Decision(events=[*events, ("task.failed", failed)])
    (winner, best), *rest = ranked
    award, mail = _award(state, winner, best, 1, None, ctx)
    events = [*events, award]
    for bid, _ in rest:
        if bid.agent_id in state.rejected:
            continue
        message_id = ctx.mint()
        lost = TaskRejected(
            task_id=state.id, agent_id=bid.agent_id, reason="lost", message_id=message_id
        )
        events.append(("task.rejected", lost))
        answer_to = bid.reply_with or bid.message_id
        mail.append(reject_mail(state, bid.agent_id, message_id, "lost", answer_to))
    return Decision(events=events, effects=mail)


def _award(
    state: Task, bid: Bid, value: float, round_: int, failure: str | None, ctx: Context
) -> tuple[tuple[str, msgspec.Struct], list[Mail]]:
    message_id = ctx.mint()
    event = TaskAwarded(
        task_id=state.id,
        agent_id=bid.agent_id,
        proposal=bid.proposal,
        score=round(value, 6),
        round=round_,
        message_id=message_id,
        previous_failure=failure,
    )
    return ("task.awarded", event), [_accept_mail(state, bid, message_id)]


def contractor_failed(state: Task, why: str, ctx: Context) -> TaskDecision:
    """Re-award to the next best proposal, or fail the task when none is left."""
    assert state.contractor is not None
    failures = {**state.failures, state.contractor: why}
    # The order is the round's (best_bid scores are relative to all of its proposals).
    ranked = [
        (bid, value)
        for bid, value in rank(list(state.bids.values()), state.strategy or "best_bid")
        if bid.agent_id not in failures
    ]
    if not ranked:
        failed = TaskFailed(
            task_id=state.id,
            reason="every awarded agent failed",
            failures=failures,
            refusals=dict(state.refusals),
        )
        return Decision(events=[("task.failed", failed)])
    bid, value = ranked[0]
    award, mail = _award(state, bid, value, state.round + 1, why, ctx)
    return Decision(events=[award], effects=mail)


# --- messages ----------------------------------------------------------------------------


def pending_mail(state: Task) -> list[Mail]:
    """Messages an open task must have sent (for a restart to send any that were lost)."""
    if state.status == "announced":
        return [cfp_mail(state)]
    if state.status != "awarded" or state.contractor is None:
        return []
    bid = state.bids.get(state.contractor)
    mail: list[Mail] = []
    if bid is not None and state.award_message_id:
        mail.append(_accept_mail(state, bid, state.award_message_id))
    for agent, message_id in state.reject_messages.items():
        rejected = state.bids.get(agent)
        answer_to = (rejected.reply_with or rejected.message_id) if rejected else None
        reason = state.rejected.get(agent, "lost")
        mail.append(reject_mail(state, agent, message_id, reason, answer_to))
    return mail


def _task_content(state: Task) -> dict[str, Any]:
    spec = state.spec
    return {
        "task_id": state.id,
        "name": spec.name,
        "description": spec.description,
        "data": spec.data,
        "requirements": msgspec.to_builtins(spec.requirements) if spec.requirements else None,
    }


def cfp_mail(state: Task) -> Mail:
    assert state.cfp_message_id is not None
    return Mail(
        message_id=state.cfp_message_id,
        performative=_P.CFP,
        receivers=state.candidates,
        content=_task_content(state),
        reply_by=state.reply_by,
    )


def _accept_mail(state: Task, bid: Bid, message_id: str) -> Mail:
    return Mail(
        message_id=message_id,
        performative=_P.ACCEPT_PROPOSAL,
        receivers=(bid.agent_id,),
        content=_task_content(state),
        in_reply_to=bid.reply_with or bid.message_id,
    )


def reject_mail(
    state: Task, agent: str, message_id: str, reason: str, answer_to: str | None
) -> Mail:
    return Mail(
        message_id=message_id,
        performative=_P.REJECT_PROPOSAL,
        receivers=(agent,),
        content={"task_id": state.id, "reason": reason},
        in_reply_to=answer_to,
    )


def cancel_mail(state: Task, agent: str, message_id: str, reason: str) -> Mail:
    return Mail(
        message_id=message_id,
        performative=_P.CANCEL,
        receivers=(agent,),
        content={"task_id": state.id, "reason": reason},
    )
