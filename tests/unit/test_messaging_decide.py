"""The conversation's decider, the routing policy and the messages view, without processes.

Given a conversation (events), when a message is recorded, then these events and effects;
and the edge's view of the same fold.
"""

from datetime import UTC
from datetime import datetime
from functools import reduce
from typing import Any

import msgspec
import pytest

from parley.aggregates.agent import Agent
from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import Record
from parley.aggregates.conversation import Recorded
from parley.aggregates.conversation import Refusal
from parley.aggregates.conversation import Refused
from parley.aggregates.conversation import decide
from parley.aggregates.conversation import evolve
from parley.aggregates.conversation import notice
from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.contracts.acl import HOP_LIMIT
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageDelivered
from parley.contracts.acl import MessageFailed
from parley.contracts.acl import MessageRejected
from parley.contracts.acl import MessageSent
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative as P
from parley.contracts.acl import read_tail
from parley.contracts.acl import tail_header
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.edge.projections.messages import MessagesProjection
from parley.messaging import domain

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CTX = Context(now=NOW, mint=lambda: "minted")


def acl(message_id: str, performative: P, sender: str, receivers: list[str], **more: Any):
    fields = {"conversation_id": "c1", "sent_at": NOW, **more}
    named = {"message_id": message_id, "performative": performative, "sender": sender}
    return AclMessage(**named, receivers=receivers, **fields)


def events(decided: list[tuple[str, msgspec.Struct]]) -> list[Event]:
    new = to_new_events(decided, subject="c1", namespace="default", source="/test", now=NOW)
    return [
        Event.record(e, stream="conversation-c1", version=v, position=100 + v)
        for v, e in enumerate(new, start=1)
    ]


def given(*decided: tuple[str, msgspec.Struct]) -> Conversation | None:
    return reduce(evolve, events(list(decided)), None)


REQUEST = acl("m1", P.REQUEST, "user:alice", ["a1"], reply_with="ask")


def test_a_new_message_is_recorded() -> None:
    decision = decide(None, Record(message_id="m1", message=REQUEST), CTX)

    assert decision.events == [("message.sent", MessageSent(message=REQUEST))]
    assert decision.effects == [Recorded(message=REQUEST)]


def test_a_message_recorded_before_is_replayed_and_appends_nothing() -> None:
    state = given(("message.sent", MessageSent(message=REQUEST)))

    decision = decide(state, Record(message_id="m1"), CTX)

    assert decision.events == []
    assert decision.effects == [Recorded(message=REQUEST, replayed=True)]


def test_a_broken_reply_is_refused_and_recorded_as_rejected() -> None:
    reply = acl("m2", P.ACCEPT_PROPOSAL, "a1", ["user:alice"], in_reply_to="ask")
    state = given(("message.sent", MessageSent(message=REQUEST)))

    decision = decide(state, Record(message_id="m2", message=reply), CTX)

    ((event_type, payload),) = decision.events
    (effect,) = decision.effects
    assert event_type == "message.rejected" and isinstance(payload, MessageRejected)
    assert payload.code == ErrorCode.PROTOCOL_VIOLATION.value
    assert isinstance(effect, Refused) and effect.new
    assert effect.refusal.code is ErrorCode.PROTOCOL_VIOLATION


def test_a_refused_message_sent_again_gets_the_same_refusal_and_appends_nothing() -> None:
    looping = acl("m9", P.REQUEST, "a1", ["a2"], hops=HOP_LIMIT + 1)
    rejected = MessageRejected(message=looping, code=ErrorCode.HOP_LIMIT_EXCEEDED.value, reason="x")
    state = given(("message.rejected", rejected))

    decision = decide(state, Record(message_id="m9"), CTX)

    assert decision.events == []
    (effect,) = decision.effects
    assert isinstance(effect, Refused) and not effect.new
    assert effect.refusal.code is ErrorCode.HOP_LIMIT_EXCEEDED and effect.refusal.reason == "x"


def test_a_message_the_conversation_does_not_hold_must_be_given() -> None:
    with pytest.raises(ValueError):
        decide(None, Record(message_id="m1"), CTX)


def test_a_notice_answers_the_failed_message_once_by_a_stable_id() -> None:
    sent = acl("m1", P.REQUEST, "a1", ["a2"], reply_with="ask", hops=2)
    why = Refusal(code=ErrorCode.MESSAGE_DELIVERY_FAILED, reason="a2 is paused")
    first, again = notice(sent, "a2", why, NOW), notice(sent, "a2", why, NOW)

    assert first.message_id == again.message_id
    assert first.sender == "user:parley" and first.receivers == ["a1"]
    assert first.performative is P.FAILURE and first.in_reply_to == "ask" and first.hops == 3
    assert first.content == {
        "code": "MESSAGE_DELIVERY_FAILED",
        "reason": "a2 is paused",
        "receiver": "a2",
    }


def agent(agent_id: str, state: AgentState, capabilities: list[str]) -> Agent:
    return Agent(
        id=agent_id,
        namespace="default",
        spec=msgspec.convert({"name": agent_id, "capabilities": capabilities}, AgentSpec),
        state=state,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


AGENTS = [
    agent("a1", AgentState.RUNNING, ["sum"]),
    agent("a2", AgentState.RUNNING, ["sum"]),
    agent("a3", AgentState.PAUSED, ["sum"]),
]
LOAD = {"a1": (2, 5), "a2": (1, 9)}


def route(**out: Any) -> list[str]:
    outgoing = OutgoingMessage(performative=P.REQUEST, **out)
    return domain.route(outgoing, "default", AGENTS, lambda a: LOAD.get(a, (0, 0)))


def test_explicit_receivers_are_kept_once_in_order() -> None:
    assert route(receivers=["a2", "a1", "a2"]) == ["a2", "a1"]


def test_a_capability_routes_to_the_least_loaded_running_agent_but_never_the_sender() -> None:
    assert route(capability="sum") == ["a2"]
    assert route(capability="sum", sender="a2") == ["a1"]


def test_a_broadcast_reaches_every_running_agent_with_the_capability() -> None:
    assert route(capability="sum", broadcast=True) == ["a1", "a2"]


def test_a_capability_nobody_running_has_is_a_delivery_failure_naming_who_has_it() -> None:
    with pytest.raises(ParleyError) as refused:
        domain.route(
            OutgoingMessage(performative=P.REQUEST, capability="sum"),
            "default",
            AGENTS[2:],
            lambda a: (0, 0),
        )
    assert refused.value.code is ErrorCode.MESSAGE_DELIVERY_FAILED
    assert "a3 (paused)" in refused.value.message


def test_the_view_shows_each_receivers_last_word_in_receiver_order() -> None:
    sent = acl("m1", P.INFORM, "user:alice", ["a1", "a2", "user:bob"])
    projection = MessagesProjection(store=None)  # type: ignore[arg-type]
    for event in events(
        [
            ("message.sent", MessageSent(message=sent)),
            ("message.failed", MessageFailed(message_id="m1", receiver="a2", code="X", reason="r")),
            ("message.delivered", MessageDelivered(message_id="m1", receiver="a1", worker="w")),
        ]
    ):
        projection.fold(event)

    view = projection.get("default", "m1")

    assert view is not None and view.status == "recorded" and view.position == 101
    assert [(d.receiver, d.status) for d in view.deliveries] == [
        ("a1", "delivered"),
        ("a2", "failed"),
        ("user:bob", "recorded"),
    ]
    assert view.deliveries[0].worker == "w" and view.deliveries[1].reason == "r"
    assert projection.history("default") == [(101, sent)]


CFP = acl("cfp", P.CFP, "task:t1", ["a1", "a2"], reply_with="tender")


def test_a_reply_worked_out_at_once_records_the_delivery_it_answers() -> None:
    state = given(("message.sent", MessageSent(message=CFP)))
    bid = acl("b1", P.PROPOSE, "a1", ["task:t1"], in_reply_to="tender")

    decision = decide(state, Record(message_id="b1", message=bid, taken_by="vm:7"), CTX)

    receipt = MessageDelivered(message_id="cfp", receiver="a1", worker="vm:7")
    assert decision.events == [("message.sent", MessageSent(message=bid, receipt=receipt))]
    projection = MessagesProjection(store=None)  # type: ignore[arg-type]
    folded = events([("message.sent", MessageSent(message=CFP)), *decision.events])
    for event in folded:
        projection.fold(event)
    view = projection.get("default", "cfp")
    assert view is not None
    assert [(d.receiver, d.status, d.worker) for d in view.deliveries] == [
        ("a1", "delivered", "vm:7"),
        ("a2", "queued", None),
    ]
    conversation = reduce(evolve, folded, None)
    assert conversation is not None and conversation.delivered == {"cfp": {"a1"}}


@pytest.mark.parametrize(
    ("before", "reply", "taken_by"),
    [
        ((), acl("b1", P.PROPOSE, "a1", ["task:t1"], in_reply_to="tender"), None),
        (  # its receipt is recorded already
            (("message.delivered", MessageDelivered(message_id="cfp", receiver="a1")),),
            acl("b1", P.PROPOSE, "a1", ["task:t1"], in_reply_to="tender"),
            "vm:7",
        ),
        ((), acl("n1", P.INFORM, "a1", ["task:t1"]), "vm:7"),  # answers nothing
        (  # a user's answer: users' deliveries are recorded, not taken
            (("message.sent", MessageSent(message=acl("q", P.REQUEST, "a1", ["user:bob"]))),),
            acl("u1", P.INFORM, "user:bob", ["a1"], in_reply_to="q"),
            "vm:7",
        ),
    ],
)
def test_a_reply_carries_no_receipt_unless_an_agent_answering_at_once_took_the_message(
    before: tuple[tuple[str, msgspec.Struct], ...], reply: AclMessage, taken_by: str | None
) -> None:
    state = given(("message.sent", MessageSent(message=CFP)), *before)

    decision = decide(
        state, Record(message_id=reply.message_id, message=reply, taken_by=taken_by), CTX
    )

    ((event_type, payload),) = decision.events
    assert event_type == "message.sent" and isinstance(payload, MessageSent)
    assert payload.receipt is None


def test_a_rejected_message_is_readable_by_id_but_not_in_history() -> None:
    late = acl("m2", P.INFORM, "a1", ["user:alice"], in_reply_to="nothing")
    projection = MessagesProjection(store=None)  # type: ignore[arg-type]
    for event in events(
        [("message.rejected", MessageRejected(message=late, code="C", reason="no"))]
    ):
        projection.fold(event)

    view = projection.get("default", "m2")

    assert view is not None and view.status == "rejected" and view.position == 101
    assert view.rejection is not None and view.rejection.reason == "no"
    assert projection.has("default", "m2") and projection.history("default") == []


def test_a_conversation_tail_reads_back_and_a_malformed_one_is_no_hint() -> None:
    assert read_tail(tail_header(3, 1234, "01a2-e")) == (3, 1234, "01a2-e")
    for bad in ("", "3", "3 4", "3 4 ", "x 4 e", "3 -4 e"):
        assert read_tail(bad) is None
