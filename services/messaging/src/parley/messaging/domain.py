"""Pure policies of a send that are not the conversation's: what a send may ask, who gets a
message (direct, by capability to the least loaded agent, or broadcast), why a receiver is
unreachable, what is recorded, how long a send-and-wait waits.

The protocol rules a message must keep in its conversation (replies, reply-by, hop limit)
are the conversation aggregate's: :mod:`parley.aggregates.conversation`.
"""

from collections.abc import Callable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

from parley.aggregates.agent import Agent
from parley.contracts.acl import AclMessage
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import SendMessage
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import AgentState
from parley.messaging.replies import SendRefused

__all__ = [
    "compose",
    "route",
    "running",
    "unreachable",
    "utc",
    "validate",
    "wait_seconds",
]

_AS_SENT = tuple(
    name
    for name in AclMessage.__struct_fields__
    if name in OutgoingMessage.__struct_fields__
    and name not in {"message_id", "receivers", "conversation_id", "reply_by"}
)
"""The fields a recorded message takes from the outgoing one as they are."""
_STATE_HINT = {
    "created": "start it",
    "paused": "resume it",
    "stopped": "start it",
    "failed": "restart it",
}


def validate(out: OutgoingMessage) -> None:
    """Receivers or a capability, not both; broadcast only by capability.

    Raises:
        SendRefused: ``VALIDATION_ERROR`` listing every problem.
    """
    problems = []
    if not out.receivers and out.capability is None:
        problems.append(("receivers", "give receivers, or a capability to route by"))
    if out.receivers and out.capability is not None:
        problems.append(("capability", "give receivers or a capability, not both"))
    if out.broadcast and out.capability is None:
        problems.append(("broadcast", "broadcast needs a capability"))
    if problems:
        raise SendRefused(
            ErrorCode.VALIDATION_ERROR,
            "; ".join(m for _, m in problems),
            {"errors": [{"field": f"message.{f}", "message": m} for f, m in problems]},
        )


def running(agent: Agent | None) -> bool:
    """Whether ``agent`` takes deliveries."""
    return agent is not None and agent.state is AgentState.RUNNING


def route(
    out: OutgoingMessage,
    namespace: str,
    capable: Sequence[Agent],
    load: Callable[[str], tuple[int, int]],
) -> list[str]:
    """The receivers of ``out``: its own (de-duplicated), or by capability the least loaded
    running agent of ``capable`` (``load``: lower is less loaded; ties by id), or every
    running one when it broadcasts. The sender never routes to itself.

    Raises:
        SendRefused: ``MESSAGE_DELIVERY_FAILED`` when no capable agent is running.
    """
    if out.receivers:
        return list(dict.fromkeys(out.receivers))
    capable = [a for a in capable if a.id != out.sender]
    up = [a for a in capable if running(a)]
    if not up:
        others = ", ".join(f"{a.id} ({a.state.value})" for a in capable[:10])
        raise SendRefused(
            ErrorCode.MESSAGE_DELIVERY_FAILED,
            f"no running agent in namespace {namespace} has capability {out.capability!r}"
            + (f"; agents with it that are not running: {others}" if others else ""),
            {
                "capability": out.capability,
                "agents": [{"agent_id": a.id, "state": a.state.value} for a in capable],
            },
        )
    if out.broadcast:
        return sorted(a.id for a in up)
    return [min(up, key=lambda a: (*load(a.id), a.id)).id]


def unreachable(receiver: str, agent: Agent | None, namespace: str) -> str | None:
    """Why agent ``receiver`` cannot take a delivery now (None: it can)."""
    if running(agent):
        return None
    if agent is None:
        return f"agent {receiver} does not exist in namespace {namespace}"
    state = agent.state.value
    return f"agent {receiver} is {state}; {_STATE_HINT.get(state, 'start it')} to deliver to it"


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` with a zone (a time without one is read as UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def wait_seconds(cmd: SendMessage, message: AclMessage) -> float:
    """How long a send-and-wait waits: its ``wait_seconds``, at most until ``reply-by``."""
    wait = cmd.wait_seconds or 0.0
    if message.reply_by is not None:
        wait = min(wait, (message.reply_by - utcnow()).total_seconds())
    return max(0.0, wait)


def compose(
    cmd: SendMessage, message_id: str, conversation_id: str, receivers: list[str]
) -> AclMessage:
    """The message ``cmd`` sends, as it is recorded (sent now, ``reply-by`` in UTC)."""
    out = cmd.message
    return AclMessage(
        **{name: getattr(out, name) for name in _AS_SENT},
        message_id=message_id,
        receivers=receivers,
        conversation_id=conversation_id,
        reply_by=utc(out.reply_by),
        namespace=cmd.namespace,
        hops=cmd.hops,
        sent_at=utcnow(),
    )
