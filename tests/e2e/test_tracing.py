"""One trace per request across processes: edge → NATS → registry → the recorded event."""

import secrets
import uuid

from parley.eventstore.factory import open_store


async def test_the_event_a_request_causes_carries_the_requests_trace_and_request_id(
    stack, client
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    created = await client.post(
        "/api/v1/agents",
        json={"name": f"traced-{uuid.uuid4().hex[:8]}"},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert created.status_code == 201, created.text
    agent_id = created.json()["data"]["id"]

    store = await open_store(nats_url=stack.nats_url)
    try:
        [event] = await store.read(f"agent-{agent_id}")
    finally:
        await store.close()

    assert event.type == "agent.created"
    _, event_trace, event_span, _ = event.traceparent.split("-")
    assert event_trace == trace_id  # the caller's trace went through the edge and the registry
    assert event_span != caller_span  # … continued by the services' own spans
    assert event.correlationid == created.headers["x-request-id"]
    assert event.source == "/parley/registry"


async def test_errors_report_the_trace_id_of_the_request(client) -> None:
    trace_id = secrets.token_hex(16)
    response = await client.get(
        f"/api/v1/agents/{uuid.uuid4()}",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "AGENT_NOT_FOUND"
    assert error["trace_id"] == trace_id
    assert error["request_id"] == response.headers["x-request-id"]
