"""OWASP API4 (unrestricted resource consumption): the runtime's per-namespace quotas.

The stack here is this module's own, its runtime started with a quota of one running
instance per namespace (``PARLEY_QUOTA_MAX_INSTANCES``) and a tiny daily model spend
(``PARLEY_QUOTA_DAILY_SPEND_USD``), and pointed at a local OpenAI-wire server whose model is
priced in the catalogue (gpt-4.1-mini: 11 input + 7 output tokens a call cost $0.0000156).
"""

import asyncio
import uuid
from datetime import UTC
from datetime import datetime

import httpx
import pytest
from e2e_support import new_agent
from tests_support import eventually
from tests_support import stream_events
from wire_server import WireServer

from parley.devstack.stack import Stack

KEY = "sk-test-quota-0123456789"
MODEL = "gpt-4.1-mini"
DAILY_SPEND_USD = 0.00001
CALL_COST_USD = (11 * 0.4 + 7 * 1.6) / 1_000_000
HANG_S = 4


@pytest.fixture(scope="module")
def stack_env(wire: WireServer) -> dict[str, str]:
    """One running instance a namespace, a tiny daily spend, the runtime on the wire server."""
    return {
        "PARLEY_OPENAI_BASE_URL": f"{wire.url}/v1",
        "OPENAI_API_KEY": KEY,
        "PARLEY_OPENAI_IDLE_TIMEOUT": str(HANG_S),
        "PARLEY_OPENAI_MAX_RETRIES": "0",
        "PARLEY_QUOTA_MAX_INSTANCES": "1",
        "PARLEY_QUOTA_DAILY_SPEND_USD": str(DAILY_SPEND_USD),
    }


def _namespace(label: str) -> dict[str, str]:
    return {"X-Parley-Namespace": f"{label}-{uuid.uuid4().hex[:8]}"}


async def _agent(http: httpx.AsyncClient, namespace: dict[str, str]) -> str:
    return await new_agent(http, "q", headers=namespace, provider="openai", model=MODEL)


async def _chat(
    http: httpx.AsyncClient, agent_id: str, namespace: dict[str, str]
) -> httpx.Response:
    return await http.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=namespace
    )


async def test_a_namespace_at_its_running_instances_quota_is_refused_and_others_are_not(
    http: httpx.AsyncClient, wire: WireServer
) -> None:
    tenant, other = _namespace("inst-a"), _namespace("inst-b")
    first, second = await _agent(http, tenant), await _agent(http, tenant)
    elsewhere = await _agent(http, other)
    wire.script("openai", "hang")  # the first turn holds the namespace's only instance
    before = wire.count("openai")
    held = asyncio.create_task(_chat(http, first, tenant))

    async def reached() -> bool:
        return wire.count("openai") > before

    await eventually(reached, within=10)

    refused = await _chat(http, second, tenant)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert "PARLEY_QUOTA_MAX_INSTANCES" in error["message"]
    assert error["details"]["quota"] == "max_instances"
    assert error["details"]["limit"] == 1
    assert wire.count("openai") == before + 1  # refused before any model call

    unaffected = await _chat(http, elsewhere, other)
    assert unaffected.status_code == 200, unaffected.text

    await held  # the hung call times out and the turn ends: its instance is free again
    again = await _chat(http, second, tenant)
    assert again.status_code == 200, again.text


async def test_a_namespace_past_its_daily_spend_is_refused_before_any_model_call(
    http: httpx.AsyncClient, wire: WireServer, own_stack: Stack
) -> None:
    tenant, other = _namespace("spend-a"), _namespace("spend-b")
    agent, elsewhere = await _agent(http, tenant), await _agent(http, other)
    wire.script("openai")
    first = await _chat(http, agent, tenant)
    assert first.status_code == 200, first.text  # under the cap when it started

    calls = wire.count("openai")
    refused = await _chat(http, agent, tenant)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert "PARLEY_QUOTA_DAILY_SPEND_USD" in error["message"]
    assert error["details"] == {
        "quota": "daily_spend_usd",
        "spent": pytest.approx(CALL_COST_USD),
        "limit": DAILY_SPEND_USD,
    }
    webhook = await http.post(
        f"/api/v1/agents/{agent}/webhook", json={"input_data": {"message": "later"}}, headers=tenant
    )
    assert webhook.status_code == 403, webhook.text  # an execution is not even queued
    assert webhook.json()["error"]["details"]["quota"] == "daily_spend_usd"
    assert wire.count("openai") == calls  # no model call was made

    assert (await _chat(http, elsewhere, other)).status_code == 200

    day = datetime.now(UTC).strftime("%Y%m%d")
    stream = f"spend-{tenant['X-Parley-Namespace']}-{day}"
    recorded = await stream_events(own_stack, stream)
    assert [e.type for e in recorded] == ["spend.recorded"]
    assert recorded[0].data["agent_id"] == agent
    assert recorded[0].data["total_cost_usd"] == pytest.approx(CALL_COST_USD)
    assert recorded[0].namespace == tenant["X-Parley-Namespace"]
