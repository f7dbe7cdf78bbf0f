"""FIPA-ACL: messages between agents, the messaging service's commands and events.

A message has one of the 22 FIPA communicative acts and the FIPA message parameters. Its
``sender`` and ``receivers`` are *principals*: an agent id, or ``user:<name>`` (someone using
the API), ``task:<task id>`` (a Contract Net round of the tasks service), ``run:<run id>`` (a
cluster group run). Only agents receive through an inbox; replies to the others reach their
service.

Streams: ``conversation-<conversation id>`` holds every message of a conversation
(``message.sent``, ``message.delivered``, ``message.failed``, ``message.rejected``).

Delivery: the messaging service appends ``message.sent`` and then puts one work item per
receiving agent on the JetStream work queue ``PARLEY_INBOX`` (subject
``parley.inbox.agent.<agent id>``, ``Nats-Msg-Id`` ``<message id>:<agent id>``); a reply to a
task or run goes to ``parley.inbox.tasks`` for the tasks service. The runtime takes an
agent's items, appends ``message.delivered``, runs a turn, and answers with a reply message
(``parley.cmd.messaging.send``) before acknowledging the item, so a delivery survives a
killed runtime. A send-and-wait waits for ``parley.notify.reply.<message id>`` (core NATS),
published by the messaging service for every message whose ``in_reply_to`` names it.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from typing import Any
from typing import Literal

import msgspec
from msgspec import Meta

from parley.contracts.errors import ErrorBody
from parley.contracts.ids import ID_PATTERN
from parley.contracts.ids import ScopedStream

__all__ = [
    "VIEWED",
    "EVENT_TYPES",
    "HOP_LIMIT",
    "PROTOCOL_REPLIES",
    "SERVICE",
    "TAIL_HEADER",
    "AclMessage",
    "MessageDelivered",
    "MessageFailed",
    "MessageRejected",
    "MessageReply",
    "MessageSent",
    "OutgoingMessage",
    "Performative",
    "Principal",
    "SendMessage",
    "conversation_stream",
    "read_tail",
    "tail_header",
    "inbox_subject",
    "reply_subject",
]

SERVICE = "messaging"
VIEWED = ("agent", "conversation")
"""The stream categories the messaging service's directory reads (see ``runtime.VIEWED``)."""
HOP_LIMIT = 8
TAIL_HEADER = "Parley-Conversation-Tail"
"""On an inbox item: the conversation's last event as the messaging service recorded the
message, ``<version> <position> <event id>``; the receiving runtime appends its
``message.delivered`` after it without looking the conversation's end up."""


def tail_header(version: int, position: int, event_id: str) -> str:
    """The :data:`TAIL_HEADER` value for a conversation that ends with ``event_id``."""
    return f"{version} {position} {event_id}"


def read_tail(value: str) -> tuple[int, int, str] | None:
    """(version, position, event id) from a :data:`TAIL_HEADER` value; None if malformed."""
    version, _, rest = value.partition(" ")
    position, _, event_id = rest.partition(" ")
    if not (version.isdigit() and position.isdigit() and event_id):
        return None
    return int(version), int(position), event_id


"""Agent-caused messages in one causal chain; one more is refused (loops stop here)."""

Principal = Annotated[
    str,
    Meta(
        pattern=r"^(?:[A-Za-z0-9_-]{1,64}|(?:user|task|run):[A-Za-z0-9_.@-]{1,128})$",
        description="An agent id, or `user:<name>`, `task:<id>`, `run:<id>`.",
    ),
]
ConversationId = Annotated[str, Meta(pattern=ID_PATTERN)]
Capability = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Performative(StrEnum):
    """The 22 FIPA communicative acts."""

    ACCEPT_PROPOSAL = "accept-proposal"
    AGREE = "agree"
    CANCEL = "cancel"
    CFP = "cfp"
    CONFIRM = "confirm"
    DISCONFIRM = "disconfirm"
    FAILURE = "failure"
    INFORM = "inform"
    INFORM_IF = "inform-if"
    INFORM_REF = "inform-ref"
    NOT_UNDERSTOOD = "not-understood"
    PROPAGATE = "propagate"
    PROPOSE = "propose"
    PROXY = "proxy"
    QUERY_IF = "query-if"
    QUERY_REF = "query-ref"
    REFUSE = "refuse"
    REJECT_PROPOSAL = "reject-proposal"
    REQUEST = "request"
    REQUEST_WHEN = "request-when"
    REQUEST_WHENEVER = "request-whenever"
    SUBSCRIBE = "subscribe"


Protocol = Literal["fipa-request", "fipa-query", "fipa-contract-net", "fipa-subscribe"]

P = Performative
PROTOCOL_REPLIES: dict[Performative, frozenset[Performative]] = {
    P.REQUEST: frozenset({P.AGREE, P.REFUSE, P.INFORM, P.FAILURE, P.NOT_UNDERSTOOD}),
    P.AGREE: frozenset({P.INFORM, P.FAILURE}),
    P.QUERY_IF: frozenset({P.INFORM, P.REFUSE, P.FAILURE, P.NOT_UNDERSTOOD}),
    P.QUERY_REF: frozenset({P.INFORM, P.REFUSE, P.FAILURE, P.NOT_UNDERSTOOD}),
    P.CFP: frozenset({P.PROPOSE, P.REFUSE, P.NOT_UNDERSTOOD}),
    P.PROPOSE: frozenset({P.ACCEPT_PROPOSAL, P.REJECT_PROPOSAL}),
    P.ACCEPT_PROPOSAL: frozenset({P.INFORM, P.FAILURE}),
    P.SUBSCRIBE: frozenset({P.AGREE, P.REFUSE, P.INFORM, P.FAILURE, P.NOT_UNDERSTOOD}),
    P.REQUEST_WHEN: frozenset({P.AGREE, P.REFUSE, P.INFORM, P.FAILURE, P.NOT_UNDERSTOOD}),
    P.REQUEST_WHENEVER: frozenset({P.AGREE, P.REFUSE, P.INFORM, P.FAILURE, P.NOT_UNDERSTOOD}),
}
"""For a message in a protocol: the performatives a reply to it may carry.

`not-understood` may answer anything; `cancel` may follow anything its sender started. A
message whose performative is not a key here (e.g. `inform`) expects no reply.
"""


class AclMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A FIPA-ACL message as recorded and delivered (receivers resolved)."""

    message_id: str
    performative: Performative
    sender: Principal
    receivers: list[Principal]
    conversation_id: ConversationId
    content: Any = None
    """The FIPA content: text, or a JSON value when `language` is `json`."""
    reply_to: list[Principal] = []
    language: Annotated[str, Meta(max_length=64)] | None = None
    encoding: Annotated[str, Meta(max_length=64)] | None = None
    ontology: Annotated[str, Meta(max_length=128)] | None = None
    protocol: Protocol | None = None
    reply_with: Annotated[str, Meta(max_length=128)] | None = None
    in_reply_to: Annotated[str, Meta(max_length=128)] | None = None
    reply_by: datetime | None = None
    namespace: str = "default"
    hops: int = 0
    """Agent-caused messages before this one in its causal chain."""
    sent_at: datetime | None = None


class OutgoingMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A message as a client sends it: receivers, or a capability to route by."""

    performative: Performative
    sender: Principal = "user:api"
    receivers: Annotated[list[Principal], Meta(max_length=1000)] = []
    capability: Capability | None = None
    """Route to an agent with this capability (the least loaded), or to all of them."""
    broadcast: bool = False
    content: Any = None
    reply_to: Annotated[list[Principal], Meta(max_length=100)] = []
    language: Annotated[str, Meta(max_length=64)] | None = None
    encoding: Annotated[str, Meta(max_length=64)] | None = None
    ontology: Annotated[str, Meta(max_length=128)] | None = None
    protocol: Protocol | None = None
    conversation_id: ConversationId | None = None
    reply_with: Annotated[str, Meta(max_length=128)] | None = None
    in_reply_to: Annotated[str, Meta(max_length=128)] | None = None
    reply_by: datetime | None = None
    message_id: Annotated[str, Meta(pattern=ID_PATTERN)] | None = None
    """Chosen by the caller for de-duplication (e.g. from an `Idempotency-Key`)."""


class SendMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Command `parley.cmd.messaging.send`: record and deliver one message."""

    message: OutgoingMessage
    namespace: str = "default"
    request_id: str | None = None
    traceparent: str | None = None
    wait_seconds: Annotated[float, Meta(ge=0, le=300)] | None = None
    """Send-and-wait: answer with the first reply within this many seconds."""
    hops: int = 0
    """Set by the runtime for messages its agents send (the inbound message's hops + 1)."""
    min_position: int = 0
    taken_by: str | None = None
    """Set by a runtime whose agent answered at once (a bid, a refusal): the worker that
    took the message this one answers. The reply then also records that delivery
    (:attr:`MessageSent.receipt`) instead of a ``message.delivered`` of its own."""


class Delivery(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One receiver's outcome."""

    receiver: str
    status: Literal["queued", "failed"]
    code: str | None = None
    reason: str | None = None


class MessageReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Reply to `send`."""

    ok: bool
    message_id: str | None = None
    conversation_id: str | None = None
    status: Literal["delivered", "partially_delivered", "failed", "recorded"] | None = None
    """`recorded`: the message went to no agent (a reply to a user, task or run)."""
    delivered_to: list[str] = []
    delivered_at: datetime | None = None
    deliveries: list[Delivery] = []
    reply: AclMessage | None = None
    """Send-and-wait: the first reply, if it came in time."""
    timed_out: bool = False
    position: int = 0
    error: ErrorBody | None = None


# --- events (on conversation-<id>) ------------------------------------------------------


class MessageSent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message was accepted and recorded (before delivery)."""

    message: AclMessage
    receipt: "MessageDelivered | None" = None
    """On a reply its agent worked out at once (a bid, a refusal): the delivery of the
    message it answers to that agent, which then records no ``message.delivered``."""


class _DeliveryEvent(msgspec.Struct, kw_only=True):
    """The fields of an event about delivering a message: which message, to whom."""

    message_id: str
    receiver: str


class MessageDelivered(_DeliveryEvent, kw_only=True):
    """An agent's runtime took the message from its inbox."""

    worker: str | None = None


class MessageFailed(_DeliveryEvent, kw_only=True):
    """A receiver could not be reached (stopped, paused, unknown) or could not answer."""

    code: str
    reason: str


class MessageRejected(msgspec.Struct, kw_only=True):
    """A reply broke its conversation's protocol or came after `reply-by`; not delivered."""

    message: AclMessage
    code: str
    reason: str


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "message.sent": MessageSent,
    "message.delivered": MessageDelivered,
    "message.failed": MessageFailed,
    "message.rejected": MessageRejected,
}


conversation_stream = ScopedStream("conversation")
"""Stream of a conversation's messages: ``conversation-<id>`` in ``default``, else
``conversation-<namespace>_<id>`` (a conversation id is only unique in its namespace)."""


def inbox_subject(receiver: str) -> str:
    """Work-queue subject a receiver's deliveries go to."""
    if receiver.startswith(("task:", "run:")):
        return "parley.inbox.tasks"
    return f"parley.inbox.agent.{receiver}"


def reply_subject(message_id: str) -> str:
    """Core NATS subject on which replies to ``message_id`` are announced."""
    return f"parley.notify.reply.{message_id}"
