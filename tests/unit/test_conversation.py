"""The conversation fold and the protocol rules every message must keep (pure, no broker)."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from _builders import fold_decided

from parley.aggregates.conversation import Conversation
from parley.aggregates.conversation import check
from parley.aggregates.conversation import evolve
from parley.contracts.acl import HOP_LIMIT
from parley.contracts.acl import PROTOCOL_REPLIES
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageDelivered
from parley.contracts.acl import MessageFailed
from parley.contracts.acl import MessageRejected
from parley.contracts.acl import MessageSent
from parley.contracts.acl import Performative
from parley.contracts.errors import ErrorCode

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = Performative


def message(message_id: str, performative: P, sender: str, receivers: list[str], **more: Any):
    return AclMessage(
        message_id=message_id,
        performative=performative,
        sender=sender,
        receivers=receivers,
        conversation_id="c1",
        **more,
    )


def record(events: list[tuple[str, msgspec.Struct]]) -> Conversation:
    state = fold_decided(
        evolve,
        None,
        events,
        version=0,
        positions=100,
        source="/parley/messaging",
        time=NOW,
        stream="conversation-c1",
    )
    assert state is not None
    return state


def sent(msg: AclMessage) -> tuple[str, msgspec.Struct]:
    return "message.sent", MessageSent(message=msg)


REQUEST = message("m1", P.REQUEST, "user:alice", ["a1"], reply_with="ask")
INFORM = message("m2", P.INFORM, "user:alice", ["a1"])


def test_the_fold_keeps_messages_keys_outcomes_and_the_first_reply() -> None:
    reply = message("m3", P.AGREE, "a1", ["user:alice"], in_reply_to="ask")
    later = message("m4", P.INFORM, "a1", ["user:alice"], in_reply_to="ask")
    state = record(
        [
            sent(REQUEST),
            ("message.delivered", MessageDelivered(message_id="m1", receiver="a1")),
            sent(INFORM),
            ("message.failed", MessageFailed(message_id="m2", receiver="a1", code="X", reason="r")),
            sent(reply),
            sent(later),
            ("message.rejected", MessageRejected(message=INFORM, code="Y", reason="no")),
            ("message.something_new", MessageDelivered(message_id="m9", receiver="a9")),
        ]
    )

    assert state.version == 8 and state.position == 108
    assert list(state.messages) == ["m1", "m2", "m3", "m4"]
    assert state.original("ask") == REQUEST and state.original("m1") == REQUEST
    assert state.delivered == {"m1": {"a1"}}
    assert state.failed["m2"]["a1"].reason == "r"
    assert state.first_reply["m1"] == reply
    assert state.sent_at["m1"] == 101
    assert "m2" in state.rejected


def reply_to(original: AclMessage, performative: P, sender: str = "a1", **more: Any):
    return message(
        "r", performative, sender, [original.sender], in_reply_to=original.message_id, **more
    )


CFP = message("cfp", P.CFP, "task:t1", ["a1", "a2"])
PROPOSE = message("prop", P.PROPOSE, "a1", ["task:t1"])


@pytest.mark.parametrize(
    ("original", "answer", "sender", "code"),
    [
        (REQUEST, P.INFORM, "a1", None),
        (REQUEST, P.AGREE, "a1", None),
        (REQUEST, P.ACCEPT_PROPOSAL, "a1", ErrorCode.PROTOCOL_VIOLATION),
        (REQUEST, P.NOT_UNDERSTOOD, "a1", None),
        (REQUEST, P.CANCEL, "user:alice", None),
        (REQUEST, P.CANCEL, "a1", ErrorCode.PROTOCOL_VIOLATION),
        (REQUEST, P.INFORM, "a2", ErrorCode.PROTOCOL_VIOLATION),  # not a receiver
        (INFORM, P.AGREE, "a1", ErrorCode.PROTOCOL_VIOLATION),  # expects no reply
        (INFORM, P.NOT_UNDERSTOOD, "a1", None),
        (CFP, P.PROPOSE, "a2", None),
        (CFP, P.INFORM, "a2", ErrorCode.PROTOCOL_VIOLATION),
        (PROPOSE, P.ACCEPT_PROPOSAL, "task:t1", None),
        (PROPOSE, P.REJECT_PROPOSAL, "task:t1", None),
    ],
    ids=lambda v: getattr(v, "value", None) or getattr(v, "message_id", None) or str(v),
)
def test_a_reply_must_be_one_its_original_allows(
    original: AclMessage, answer: P, sender: str, code: ErrorCode | None
) -> None:
    state = record([sent(original)])
    refusal = check(state, reply_to(original, answer, sender), NOW)
    assert (refusal.code if refusal else None) == code


def test_every_protocol_reply_is_accepted_from_a_receiver() -> None:
    for asked, allowed in PROTOCOL_REPLIES.items():
        original = message("o", asked, "user:alice", ["a1"])
        state = record([sent(original)])
        for answer in allowed:
            assert check(state, reply_to(original, answer), NOW) is None, (asked, answer)


def test_a_reply_to_an_unknown_message_is_a_violation() -> None:
    refusal = check(record([sent(REQUEST)]), reply_to(INFORM, P.INFORM), NOW)
    assert refusal is not None and refusal.code is ErrorCode.PROTOCOL_VIOLATION
    assert "names no message" in refusal.reason
    assert check(None, reply_to(INFORM, P.INFORM), NOW) is not None


def test_a_reply_after_reply_by_expires_but_a_cancel_does_not() -> None:
    original = message("o", P.REQUEST, "user:alice", ["a1"], reply_by=NOW - timedelta(seconds=1))
    state = record([sent(original)])

    late = check(state, reply_to(original, P.INFORM), NOW)
    cancel = check(state, reply_to(original, P.CANCEL, sender="user:alice"), NOW)
    in_time = check(state, reply_to(original, P.INFORM), NOW - timedelta(seconds=2))

    assert late is not None and late.code is ErrorCode.MESSAGE_EXPIRED
    assert cancel is None and in_time is None


def test_a_message_past_the_hop_limit_is_refused_even_when_new() -> None:
    at_limit = message("h", P.REQUEST, "a1", ["a2"], hops=HOP_LIMIT)
    past = message("h", P.REQUEST, "a1", ["a2"], hops=HOP_LIMIT + 1)

    assert check(None, at_limit, NOW) is None
    refusal = check(None, past, NOW)
    assert refusal is not None and refusal.code is ErrorCode.HOP_LIMIT_EXCEEDED
