"""The tools and strategies catalogues through the real stack, and the registry refusing
agents whose tools or strategy do not fit them."""

import uuid
from typing import Any

import httpx
import pytest
from e2e_support import body_of


async def test_the_tools_catalogue_lists_every_built_in_tool_with_its_schemas(
    client: httpx.AsyncClient,
) -> None:
    body = body_of(await client.get("/api/v1/tools"))
    names = [t["name"] for t in body["data"]]
    assert names == [
        "calculator",
        "current_time",
        "http_request",
        "json_query",
        "read_file",
        "recall",
        "remember",
        "send_message",
    ]
    assert body["pagination"] == {
        "limit": 50,
        "next_cursor": None,
        "has_more": False,
        "total_count": 8,
    }
    http = next(t for t in body["data"] if t["name"] == "http_request")
    assert http["category"] == "web" and http["reaches_network"] is True
    assert http["idempotent"] is False
    assert http["config_schema"]["properties"]["timeout_seconds"]["minimum"] == 0.1
    assert http["parameters"]["required"] == ["url"]
    assert http["examples"]


async def test_tools_filter_by_category_and_page_with_a_cursor(client: httpx.AsyncClient) -> None:
    web = (await client.get("/api/v1/tools", params={"category": "web"})).json()
    assert [t["name"] for t in web["data"]] == ["http_request"]
    first = (await client.get("/api/v1/tools", params={"limit": 2})).json()
    assert first["pagination"]["has_more"] is True
    second = await client.get(
        "/api/v1/tools", params={"limit": 2, "cursor": first["pagination"]["next_cursor"]}
    )
    assert [t["name"] for t in second.json()["data"]] == ["http_request", "json_query"]
    bad = await client.get("/api/v1/tools", params={"category": "magic"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_one_tool_is_read_by_name_and_an_unknown_one_is_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/tools/calculator")
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "calculator"
    missing = await client.get("/api/v1/tools/teleport")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert "calculator" in error["message"] and error["request_id"]


async def test_the_strategies_catalogue_lists_and_reads_strategies(
    client: httpx.AsyncClient,
) -> None:
    listed = (await client.get("/api/v1/strategies")).json()
    assert [s["name"] for s in listed["data"]] == ["plan_and_execute", "reactive"]
    assert listed["pagination"]["total_count"] == 2
    plan = (await client.get("/api/v1/strategies/plan_and_execute")).json()["data"]
    assert plan["config_schema"]["properties"]["max_iterations"]["maximum"] == 100
    missing = await client.get("/api/v1/strategies/swarm")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


async def _create(client: httpx.AsyncClient, **spec: Any) -> httpx.Response:
    return await client.post(
        "/api/v1/agents",
        json={"name": f"tools-{uuid.uuid4().hex[:8]}", **spec},
        headers={"X-Parley-Namespace": f"t-{uuid.uuid4().hex[:12]}"},
    )


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        ({"tools": [{"name": "teleport"}]}, "TOOL_NOT_AVAILABLE", "tools[0].name"),
        (
            {"tools": [{"name": "calculator"}, {"name": "calculator"}]},
            "VALIDATION_ERROR",
            "tools[1].name",
        ),
        (
            {
                "tools": [
                    {"name": "calculator"},
                    {"name": "http_request", "config": {"timeout_seconds": 0}},
                ]
            },
            "VALIDATION_ERROR",
            "tools[1].config.timeout_seconds",
        ),
        (
            {"tools": [{"name": "http_request", "config": {"allowed_hosts": ["http://x.com"]}}]},
            "VALIDATION_ERROR",
            "tools[0].config.allowed_hosts[0]",
        ),
        (
            {"tools": [{"name": "current_time", "config": {"default_timezone": "Mars/Base"}}]},
            "VALIDATION_ERROR",
            "tools[0].config.default_timezone",
        ),
        (
            {"strategy": {"name": "plan_and_execute", "config": {"max_iterations": 0}}},
            "VALIDATION_ERROR",
            "strategy.config.max_iterations",
        ),
        (
            {"strategy": {"name": "reactive", "config": {"max_tool_rounds": 50}}},
            "VALIDATION_ERROR",
            "strategy.config.max_tool_rounds",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
async def test_the_registry_refuses_agents_whose_tools_or_strategy_do_not_fit_the_catalogue(
    client: httpx.AsyncClient, spec: dict[str, Any], code: str, field: str
) -> None:
    response = await _create(client, **spec)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert [e["field"] for e in error["details"]["errors"]] == [field]


async def test_an_agent_with_valid_tool_and_strategy_configs_is_created(
    client: httpx.AsyncClient,
) -> None:
    response = await _create(
        client,
        tools=[
            {"name": "http_request", "config": {"allowed_hosts": ["*.example.com"]}},
            {"name": "calculator", "config": {"requires_approval": True}},
        ],
        strategy={"name": "plan_and_execute", "config": {"max_iterations": 10}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["spec"]["tools"][0]["config"]["allowed_hosts"] == [
        "*.example.com"
    ]
