"""`/api/v1/models` through the real edge, and agent definitions checked against it."""

from typing import Any

import httpx
import pytest
from e2e_support import body_of
from e2e_support import error_of


async def test_the_catalogue_lists_every_provider_with_prices_and_pagination(
    api: httpx.AsyncClient,
) -> None:
    body = body_of(await api.get("/api/v1/models"))
    models = {(m["provider"], m["model"]): m for m in body["data"]}
    assert {p for p, _ in models} == {"offline", "anthropic", "openai", "openai_compatible"}
    assert ("openai_compatible", "*") in models and ("offline", "offline-1") in models
    sonnet = models[("anthropic", "claude-sonnet-4-5")]
    assert sonnet["price"] == {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "currency": "USD"}
    assert sonnet["params"]["temperature"]["max"] == 1.0
    assert body["pagination"] == {
        "limit": 50, "next_cursor": None, "has_more": False, "total_count": len(models)
    }  # fmt: skip


async def test_pages_follow_the_cursor_without_repeats_or_gaps(api: httpx.AsyncClient) -> None:
    everything = (await api.get("/api/v1/models")).json()["data"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/models", params=params)).json()
        seen += page["data"]
        cursor = page["pagination"]["next_cursor"]
        assert page["pagination"]["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == everything


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "openai"}, {"gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o4-mini"}),
        ({"model_type": "reasoning"}, {"o4-mini"}),
        ({"provider": "anthropic", "capability": "reasoning"},
         {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}),
        ({"provider": "offline", "capability": "multimodal"}, set()),
    ],
)  # fmt: skip
async def test_filters_combine(
    api: httpx.AsyncClient, params: dict[str, str], expected: set[str]
) -> None:
    response = await api.get("/api/v1/models", params=params)
    assert response.status_code == 200, response.text
    assert {m["model"] for m in response.json()["data"]} == expected


@pytest.mark.parametrize(
    "params", [{"provider": "acme"}, {"capability": "telepathy"}, {"model_type": "vision"}]
)
async def test_an_unknown_filter_value_is_a_validation_error(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await api.get("/api/v1/models", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (
        response.json()["error"]["details"]["errors"][0]["field"] == f"query.{next(iter(params))}"
    )


async def test_one_model_is_read_by_provider_and_name(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/models/openai/o4-mini")
    assert response.status_code == 200, response.text
    model = response.json()["data"]
    assert model["model_type"] == "reasoning" and model["max_output_tokens"] == 100000
    assert model["params"]["temperature"] is None, "null: the model does not take it"
    assert model["params"]["reasoning_effort"]["allowed"] == ["low", "medium", "high"]


async def test_any_model_name_of_a_wildcard_provider_is_found_slashes_included(
    api: httpx.AsyncClient,
) -> None:
    for name in ("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct"):
        response = await api.get(f"/api/v1/models/openai_compatible/{name}")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["model"] == "*"


@pytest.mark.parametrize("path", ["anthropic/claude-2", "acme/x", "openai/gpt-4o/extra"])
async def test_an_unknown_model_is_404_in_the_envelope(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(f"/api/v1/models/{path}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NOT_FOUND" and "GET /api/v1/models" in error["message"]
    assert error["request_id"]


async def _refused(api: httpx.AsyncClient, **spec: Any) -> tuple[dict[str, Any], list[str]]:
    """The validation error of creating an agent of ``spec``, and the fields it names."""
    error = error_of(await api.post("/api/v1/agents", json=spec), 422, "VALIDATION_ERROR")
    return error, [e["field"] for e in error["details"]["errors"]]


async def test_an_agent_with_an_unknown_offline_model_is_refused_on_the_model_field(
    api: httpx.AsyncClient,
) -> None:
    error, fields = await _refused(api, name="a", provider="offline", model="offline-9")
    assert fields == ["model"]
    assert "offline-1" in error["message"]
    assert (await api.get("/api/v1/agents", params={"name": "a"})).json()["data"] == []


async def test_an_agent_with_a_model_newer_than_the_catalogue_is_created_with_a_warning(
    api: httpx.AsyncClient,
) -> None:
    body = {"name": "newer", "provider": "anthropic", "model": "claude-9"}
    created = await api.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    [warning] = created.json()["data"]["warnings"]
    assert "'claude-9'" in warning and "price is unknown" in warning


async def test_an_agent_with_a_temperature_out_of_the_models_range_is_refused(
    api: httpx.AsyncClient,
) -> None:
    hot = {"provider": "anthropic", "model": "claude-haiku-4-5", "params": {"temperature": 1.7}}
    _, fields = await _refused(api, name="hot", **hot)
    assert fields == ["params.temperature"]


async def test_an_update_to_a_parameter_the_model_does_not_take_is_refused(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(
        "/api/v1/agents", json={"name": "r", "provider": "openai", "model": "o4-mini"}
    )
    assert created.status_code == 201, created.text
    agent_id = created.json()["data"]["id"]
    response = await api.patch(f"/api/v1/agents/{agent_id}", json={"params": {"top_p": 0.5}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["field"] == "params.top_p"
    ok = await api.patch(
        f"/api/v1/agents/{agent_id}", json={"params": {"reasoning_effort": "high"}}
    )
    assert ok.status_code == 200, ok.text


async def test_an_agent_on_a_self_hosted_model_of_any_name_is_accepted(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(
        "/api/v1/agents",
        json={"name": "local", "provider": "openai_compatible", "model": "qwen2.5-coder:7b"},
    )
    assert response.status_code == 201, response.text
