"""A model newer than the catalogue (issue 13, "fidelity"): an unknown model of a real
provider is accepted with a warning and an unknown price; the operator's catalogue file
(``PARLEY_MODELS_FILE``) adds models with their prices; a bad file stops a service at
start-up. Through this module's own stack, its runtime pointed at a loopback provider."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from wire_server import WireServer

from parley.devstack.stack import Stack

KEY = "sk-test-SECRET-fidelity-0123456789"
NEWER = "claude-opus-9-unreleased"
"""A model no catalogue lists."""
LISTED = "claude-next-1"
"""A model only the operator's file lists, at $2 in and $10 out per million tokens."""
OPERATOR_FILE = f"""
models:
  - provider: anthropic
    model: {LISTED}
    display_name: Claude Next (operator)
    model_type: chat
    context_window: 200000
    max_output_tokens: 32000
    inputs: [text]
    capabilities: {{tools: true, streaming: true}}
    price: {{input_per_mtok: 2.0, output_per_mtok: 10.0}}
    params:
      temperature: {{min: 0.0, max: 1.0, default: 1.0}}
      max_tokens: {{min: 1, max: 32000, default: 1024}}
"""


@pytest.fixture(scope="module")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "models.yaml"
    path.write_text(OPERATOR_FILE)
    return path


@pytest.fixture(scope="module")
def stack_env(wire: WireServer, models_file: Path) -> dict[str, str]:
    """The operator's catalogue file; the runtime pointed at the wire server."""
    return {
        "PARLEY_MODELS_FILE": str(models_file),
        "PARLEY_ANTHROPIC_BASE_URL": wire.url,
        "ANTHROPIC_API_KEY": KEY,
        "PARLEY_ANTHROPIC_MAX_RETRIES": "1",
    }


async def _chat(http: httpx.AsyncClient, agent: str) -> dict:
    answer = await http.post(f"/api/v1/agents/{agent}/chat", json={"message": "hi"}, timeout=30)
    return dict(body_of(answer)["data"])


async def test_an_unknown_model_of_a_real_provider_runs_with_a_warning_and_no_price(
    http: httpx.AsyncClient, own_stack: Stack, wire: WireServer
) -> None:
    agent = await new_agent(http, "newer", actions=(), provider="anthropic", model=NEWER)
    view = body_of(await http.get(f"/api/v1/agents/{agent}"))["data"]
    assert view["spec"]["model"] == NEWER
    assert len(view["warnings"]) == 1 and NEWER in view["warnings"][0], view
    assert "price is unknown" in view["warnings"][0]
    body_of(await http.post(f"/api/v1/agents/{agent}/start"))

    wire.script("anthropic", "text")
    answer = await _chat(http, agent)
    assert answer["outcome"] == "completed" and answer["tokens_used"] > 0
    assert answer["usage"]["price_unknown"] is True and answer["usage"]["cost_usd"] == 0
    assert answer["warnings"] and "no price" in answer["warnings"][0]
    assert wire.requests[-1][1]["model"] == NEWER  # sent to the provider as given
    log = (own_stack.state_dir / "logs" / "runtime.log").read_text(errors="replace")
    assert f"model {NEWER!r} of 'anthropic' is not in the models catalogue" in log


async def test_a_model_from_the_operators_file_is_listed_checked_and_priced(
    http: httpx.AsyncClient, wire: WireServer
) -> None:
    listed = body_of(await http.get("/api/v1/models", params={"provider": "anthropic"}))["data"]
    entry = next(model for model in listed if model["model"] == LISTED)
    assert entry["price"]["input_per_mtok"] == 2.0
    too_hot = {"provider": "anthropic", "model": LISTED, "params": {"temperature": 1.5}}
    refused = await http.post("/api/v1/agents", json={"name": "too-hot", **too_hot})
    error_of(refused, 422, "VALIDATION_ERROR")  # its limits are the file's

    agent = await new_agent(http, "listed", provider="anthropic", model=LISTED)
    assert body_of(await http.get(f"/api/v1/agents/{agent}"))["data"]["warnings"] == []
    wire.script("anthropic", "text")
    answer = await _chat(http, agent)
    usage = answer["usage"]
    assert "price_unknown" not in usage and answer["warnings"] == []
    expected = (usage["input_tokens"] * 2.0 + usage["output_tokens"] * 10.0) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected) and usage["cost_usd"] > 0


async def test_an_unknown_model_of_the_offline_provider_is_still_refused(http) -> None:
    body = {"name": "offline-unknown", "provider": "offline", "model": "offline-99"}
    error = error_of(await http.post("/api/v1/agents", json=body), 422, "VALIDATION_ERROR")
    assert "offline-99" in error["message"] or "offline-99" in str(error["details"])


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("missing.yaml", None, "cannot read it"),
        ("models.ini", "models = []", "unknown format .ini"),
        ("models.json", '{"models": [{"provider": "anthropic"}]}', "not a models catalogue"),
        ("broken.yaml", "models: [", "not a models catalogue"),
    ],
)
@pytest.mark.parametrize("service", ["edge", "runtime"])
def test_a_bad_operator_file_stops_a_service_at_start_up(
    tmp_path: Path, service: str, name: str, text: str | None, problem: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    env = {**os.environ, "PARLEY_MODELS_FILE": str(path), "PARLEY_NATS_URL": "nats://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", f"parley.{service}"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert f"PARLEY_MODELS_FILE={path}" in done.stderr.decode() and problem in done.stderr.decode()


def test_a_provider_without_an_adapter_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(OPERATOR_FILE.replace("provider: anthropic", "provider: mistral"))
    env = {**os.environ, "PARLEY_MODELS_FILE": str(path), "PARLEY_NATS_URL": "nats://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "parley.edge"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0 and "no adapter for provider mistral" in done.stderr.decode()
