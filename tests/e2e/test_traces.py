"""Traces a person can read in Jaeger: the stack exports its spans over OTLP/HTTP to a real
receiver (the protobuf ``ExportTraceServiceRequest``, as Jaeger's collector receives it), and
one request reads as one tree across processes, down to the provider call.
"""

import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from e2e_support import new_agent
from otlp_receiver import OtlpReceiver
from otlp_receiver import Span
from wire_server import WireServer

MODEL = "claude-haiku-4-5"
PROMPT = "what is six times seven? " + uuid.uuid4().hex


@pytest.fixture(scope="module")
async def otlp() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack_env(otlp: OtlpReceiver, wire: WireServer) -> dict[str, str]:
    return {
        "PARLEY_OTLP_ENDPOINT": otlp.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
        "PARLEY_ANTHROPIC_BASE_URL": wire.url,
        "ANTHROPIC_API_KEY": "sk-test-traces-0123456789",
        "PARLEY_ANTHROPIC_MAX_RETRIES": "0",
    }


async def running_agent(http: httpx.AsyncClient, **spec: object) -> str:
    return await new_agent(http, "traced", **spec)


def caller() -> tuple[str, str, dict[str, str]]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, {"traceparent": f"00-{trace_id}-{span_id}-01"}


def assert_one_tree(spans: list[Span], caller_span: str) -> Span:
    """Every span's parent is a span of the trace, but one: the root, the caller's child."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id not in ids]
    tree = [(s.service, s.name, s.span_id, s.parent_id) for s in spans]
    assert [r.parent_id for r in roots] == [caller_span], tree
    return roots[0]


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


async def test_a_chat_turn_with_a_tool_call_is_one_trace_down_to_the_model_calls(
    http: httpx.AsyncClient, wire: WireServer, otlp: OtlpReceiver
) -> None:
    agent_id = await running_agent(
        http, provider="anthropic", model=MODEL, tools=[{"name": "calculator"}]
    )
    wire.script("anthropic", "tools", "text")
    wire.calls = [("call_a", "calculator", ['{"expression": "6*7"}'])]
    trace_id, caller_span, headers = caller()

    response = await http.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": PROMPT}, headers=headers
    )
    assert response.status_code == 200, response.text

    chat = f"chat {MODEL}"
    spans = await otlp.wait_for(trace_id, caller_span, chat, "execute_tool calculator")
    root = assert_one_tree(spans, caller_span)
    assert (root.service, root.kind) == ("parley-edge", "server")
    assert {"parley-edge", "parley-runtime"} <= {s.service for s in spans}

    first, second = named(spans, chat)
    for call in (first, second):
        attrs = call.attributes
        assert call.service == "parley-runtime" and call.kind == "client"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "anthropic"
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.response.model"]
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] > 0
    assert first.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert second.attributes["gen_ai.response.finish_reasons"] == ["end"]

    [tool] = named(spans, "execute_tool calculator")
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_a"

    # prompt and completion text stay out of the trace unless a setting opts in
    recorded = " ".join(str(v) for s in spans for v in s.attributes.values())
    assert PROMPT not in recorded and "Hello there" not in recorded


async def test_an_acl_request_and_its_inform_are_one_linked_trace(
    http: httpx.AsyncClient, otlp: OtlpReceiver
) -> None:
    receiver = await running_agent(http)
    trace_id, caller_span, headers = caller()

    response = await http.post(
        "/api/v1/messages",
        json={
            "performative": "request",
            "receivers": [receiver],
            "content": "hello",
            "protocol": "fipa-request",
            "reply_with": "r-1",
            "wait": 10,
        },
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["reply"]["performative"] == "inform"

    send = "parley.cmd.messaging.send process"
    spans = await otlp.wait_for(trace_id, caller_span, "process request", send)
    root = assert_one_tree(spans, caller_span)
    assert (root.service, root.kind) == ("parley-edge", "server")
    [turn] = named(spans, "process request")  # the receiver's runtime took the delivery
    assert (turn.service, turn.kind) == ("parley-runtime", "consumer")
    assert turn.attributes["fipa.performative"] == "request"
    sends = named(spans, send)
    assert {s.service for s in sends} == {"parley-messaging"}
    request = [s for s in sends if turn.span_id not in _ancestors(spans, s)]
    inform = [s for s in sends if turn.span_id in _ancestors(spans, s)]
    # the request's send led to its delivery; the inform was sent from within that delivery
    assert len(request) == 1 and len(inform) == 1
    assert request[0].span_id in _ancestors(spans, turn)


def _ancestors(spans: list[Span], span: Span) -> set[str]:
    by_id = {s.span_id: s for s in spans}
    found: set[str] = set()
    while span.parent_id in by_id:
        found.add(span.parent_id)
        span = by_id[span.parent_id]
    return found
