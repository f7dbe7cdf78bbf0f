"""Pure parts of agents answering messages: bids, content checks, the send_message policy."""

import pytest

from parley.contracts.acl import AclMessage
from parley.contracts.acl import Performative
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import Bidding
from parley.contracts.tasks import Proposal
from parley.contracts.tools import SendMessageArgs
from parley.contracts.tools import SendMessageConfig
from parley.runtime.answers import content_text
from parley.runtime.answers import derived_id
from parley.runtime.bidding import AgentStats
from parley.runtime.bidding import bid
from parley.runtime.tools import ToolContext
from parley.runtime.tools import ToolError
from parley.runtime.tools.send_message import send_message


def agent(**bidding: object) -> AgentSpec:
    return AgentSpec(name="a", capabilities=["translate"], bidding=Bidding(**bidding))


def test_a_bid_comes_from_the_policy_before_anything_was_measured():
    offer = bid(agent(base_cost=2, cost_per_second=0.5, default_time_s=4), {}, None, load=0)
    assert offer == Proposal(estimated_time_s=4, cost=4.0, confidence=0.8)


def test_measurements_and_load_shape_the_bid():
    stats = AgentStats()
    stats.record("a", True, 2.0)
    stats.record("a", False, 2.0)
    offer = bid(agent(confidence=None), {}, stats.get("a"), load=1)
    assert isinstance(offer, Proposal)
    assert offer.estimated_time_s == 4.0  # 2 s measured, doubled by one turn running
    assert offer.confidence == 0.5


@pytest.mark.parametrize(
    ("bidding", "cfp", "load", "reason"),
    [
        ({"refuse": True}, {}, 0, "does not take tendered work"),
        ({}, {"requirements": {"capabilities": ["translate", "summarise"]}}, 0, "summarise"),
        ({"max_load": 2}, {}, 2, "at capacity"),
    ],
)
def test_an_agent_refuses_when_it_should(bidding, cfp, load, reason):
    refusal = bid(agent(**bidding), cfp, None, load)
    assert isinstance(refusal, str) and reason in refusal


def message(content: object, language: str | None = None) -> AclMessage:
    return AclMessage(
        message_id="m1",
        performative=Performative.REQUEST,
        sender="user:a",
        receivers=["x"],
        conversation_id="c1",
        content=content,
        language=language,
    )


@pytest.mark.parametrize(
    ("content", "language", "text"),
    [
        ("hello", None, "hello"),
        ({"a": 1}, "json", '{"a":1}'),
        ('{"a": 1}', "json", '{"a":1}'),
        ("", None, None),
        (None, None, None),
        ("{not json", "json", None),
    ],
)
def test_content_is_text_for_the_model_or_not_understood(content, language, text):
    assert content_text(message(content, language)) == text


def test_derived_ids_are_stable_and_distinct():
    assert derived_id("m1", "a") == derived_id("m1", "a") != derived_id("m1", "b")


CTX = ToolContext(namespace="default", agent_id="a", session_id=None, files=None)


@pytest.mark.parametrize(
    ("arguments", "config", "code"),
    [
        ({"performative": "shout", "receiver": "b"}, {}, "invalid_arguments"),
        ({"performative": "cfp", "receiver": "b"}, {}, "refused"),
        ({"receiver": "b", "capability": "x"}, {}, "invalid_arguments"),
        ({"receiver": "c"}, {"allowed_receivers": ["b"]}, "refused"),
        ({"capability": "spy"}, {"allowed_capabilities": ["translate"]}, "refused"),
        ({"receiver": "b"}, {}, "refused"),  # allowed, but this run has no messenger
    ],
)
async def test_send_message_stays_inside_the_definition(arguments, config, code):
    with pytest.raises(ToolError) as caught:
        await send_message.run(SendMessageArgs(**arguments), SendMessageConfig(**config), CTX)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('{"bid": false, "reason": "busy"}', {"bid": False, "reason": "busy"}),
        (
            'echo: tender {"task_id": "t"} then {"bid": true, "confidence": 0.4}',
            {"bid": True, "confidence": 0.4},
        ),
        ('keys are bid (true or false) {"task_id": "t"}', None),
        ("no json at all {", None),
    ],
)
def test_a_judged_bid_reads_the_last_verdict_in_the_answer(text, verdict):
    from parley.runtime.answers import parse_verdict

    assert parse_verdict(text) == verdict
