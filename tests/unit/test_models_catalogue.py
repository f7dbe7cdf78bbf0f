"""The models catalogue: loading, lookup (wildcards included), prices, parameter checks."""

from importlib.resources import files

import pytest

from parley.contracts.catalogue import PROVIDERS
from parley.contracts.models import WILDCARD
from parley.contracts.models import ModelCatalogue
from parley.contracts.models import ModelInfo
from parley.contracts.models import ModelParameters
from parley.contracts.models import UnknownModelError
from parley.contracts.models import load_catalogue
from parley.contracts.models import model_warnings
from parley.contracts.models import validate_model_params
from parley.contracts.registry import ModelParams


def fields_with_errors(provider: str, model: str, **params: object) -> list[str]:
    errors = validate_model_params(provider, model, ModelParams(**params))  # type: ignore[arg-type]
    assert all(e["code"] == "VALIDATION_ERROR" and e["message"] for e in errors)
    return [e["field"] for e in errors]


def test_the_catalogue_loads_from_the_installed_package_once() -> None:
    assert (files("parley.contracts") / "data" / "models.toml").is_file()
    catalogue = load_catalogue()
    assert isinstance(catalogue, ModelCatalogue) and catalogue is load_catalogue()


def test_every_provider_the_registry_accepts_has_models_and_no_other() -> None:
    assert set(load_catalogue().providers()) == PROVIDERS


def test_each_provider_model_pair_is_listed_once() -> None:
    pairs = [(m.provider, m.model) for m in load_catalogue().models]
    assert len(pairs) == len(set(pairs))


def test_the_catalogue_lists_the_expected_models() -> None:
    catalogue = load_catalogue()
    assert catalogue.models_of("offline") == ["offline-1"]
    assert set(catalogue.models_of("openai")) == {
        "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o4-mini"
    }  # fmt: skip
    assert {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"} <= set(
        catalogue.models_of("anthropic")
    )
    assert catalogue.models_of("openai_compatible") == [WILDCARD]


def test_the_parameter_table_covers_exactly_the_agent_parameters() -> None:
    assert set(ModelParameters.__struct_fields__) == set(ModelParams.__struct_fields__)


@pytest.mark.parametrize("info", load_catalogue().models, ids=lambda m: f"{m.provider}/{m.model}")
def test_every_entry_is_consistent(info: ModelInfo) -> None:
    params = info.params
    assert validate_model_params(info.provider, info.model, ModelParams()) == []
    assert params.max_tokens is not None, "every model takes max_tokens"
    if info.max_output_tokens is not None:
        assert params.max_tokens.max == info.max_output_tokens
    if info.context_window is not None and info.max_output_tokens is not None:
        assert info.max_output_tokens <= info.context_window
    for name in ModelParameters.__struct_fields__:
        accepted = getattr(params, name)
        if accepted is None or not hasattr(accepted, "min"):
            continue
        assert accepted.min <= accepted.max
        assert accepted.default is None or accepted.min <= accepted.default <= accepted.max
    if params.reasoning_effort is not None:
        assert params.reasoning_effort.allowed
        assert info.capabilities.reasoning
    if params.budget_tokens is not None:
        assert info.capabilities.reasoning
    assert info.capabilities.multimodal == (info.inputs != ["text"])
    assert info.price.input_per_mtok >= 0 and info.price.output_per_mtok >= 0


def test_find_returns_the_exact_entry() -> None:
    info = load_catalogue().find("anthropic", "claude-sonnet-4-5")
    assert info is not None and info.display_name == "Claude Sonnet 4.5"


def test_find_matches_any_model_of_a_provider_with_a_wildcard() -> None:
    for name in ("llama3.1:8b", "qwen2.5-coder", "meta-llama/Llama-3.1-8B-Instruct"):
        info = load_catalogue().find("openai_compatible", name)
        assert info is not None and info.model == WILDCARD


def test_find_has_no_wildcard_for_hosted_providers() -> None:
    catalogue = load_catalogue()
    assert catalogue.find("anthropic", "claude-2") is None
    assert catalogue.find("openai", "claude-sonnet-4-5") is None
    assert catalogue.find("acme", "x") is None


def test_prices_are_the_list_prices_per_million_tokens() -> None:
    catalogue = load_catalogue()
    sonnet = catalogue.price("anthropic", "claude-sonnet-4-5")
    assert (sonnet.input_per_mtok, sonnet.output_per_mtok, sonnet.currency) == (3.0, 15.0, "USD")
    assert catalogue.price("openai", "gpt-4o-mini").cost(1_000_000, 1_000_000) == pytest.approx(
        0.75
    )
    assert catalogue.price("openai", "gpt-4.1").cost(1000, 500) == pytest.approx(0.006)


def test_offline_and_self_hosted_models_are_free() -> None:
    catalogue = load_catalogue()
    assert catalogue.price("offline", "offline-1").cost(10**6, 10**6) == 0
    assert catalogue.price("openai_compatible", "llama3").cost(10**6, 10**6) == 0


def test_the_price_of_an_unknown_model_is_an_error_not_zero() -> None:
    with pytest.raises(UnknownModelError):
        load_catalogue().price("openai", "gpt-99")


def test_select_filters_by_provider_capability_and_type() -> None:
    catalogue = load_catalogue()
    assert {m.provider for m in catalogue.select(provider="openai")} == {"openai"}
    assert [m.model for m in catalogue.select(model_type="reasoning")] == ["o4-mini"]
    multimodal = catalogue.select(capability="multimodal")
    assert multimodal and all(m.capabilities.multimodal for m in multimodal)
    assert not {"offline-1", WILDCARD} & {m.model for m in multimodal}
    assert catalogue.select(provider="offline", model_type="reasoning") == []


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "params"),
    [
        ("offline", "offline-1", {}),
        ("offline", "offline-1", {"temperature": 0.5, "max_tokens": 100, "top_p": 0.9}),
        ("anthropic", "claude-sonnet-4-5", {"temperature": 1.0, "max_tokens": 64000}),
        ("anthropic", "claude-opus-4-1", {"max_tokens": 16000, "budget_tokens": 8000}),
        ("anthropic", "claude-haiku-4-5", {"budget_tokens": 2048, "max_tokens": 4096}),
        ("openai", "gpt-4o", {"temperature": 2.0, "top_p": 0.1, "max_tokens": 16384}),
        ("openai", "o4-mini", {"reasoning_effort": "high", "max_tokens": 100000}),
        ("openai_compatible", "llama3.1:8b", {"temperature": 0.7, "max_tokens": 200000}),
    ],
)
def test_valid_choices_pass(provider: str, model: str, params: dict[str, object]) -> None:
    assert fields_with_errors(provider, model, **params) == []


def test_an_unknown_model_names_the_known_ones_and_the_catalogue_endpoint() -> None:
    [error] = validate_model_params("offline", "offline-2", ModelParams())
    assert error["field"] == "model"
    assert "offline-1" in error["message"] and "GET /api/v1/models" in error["message"]


@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude-9"), ("openai", "gpt-9")])
def test_an_unlisted_model_of_a_real_provider_is_accepted_with_a_warning(
    provider: str, model: str
) -> None:
    params = ModelParams(temperature=1.9, max_tokens=10**6)  # unchecked: its limits are unknown
    assert validate_model_params(provider, model, params) == []
    [warning] = model_warnings(provider, model)
    assert repr(model) in warning and "price is unknown" in warning
    assert (
        model_warnings(provider, "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4.1")
        == []
    )
    assert model_warnings("openai_compatible", "llama-3") == []


def test_an_unknown_provider_is_reported_on_provider() -> None:
    assert fields_with_errors("acme", "x") == ["provider"]


@pytest.mark.parametrize(
    ("provider", "model", "params", "field"),
    [
        ("anthropic", "claude-sonnet-4-5", {"temperature": 1.5}, "params.temperature"),
        ("anthropic", "claude-haiku-4-5", {"budget_tokens": 512}, "params.budget_tokens"),
        ("anthropic", "claude-opus-4-1", {"max_tokens": 40000}, "params.max_tokens"),
        ("openai", "gpt-4o", {"max_tokens": 16385}, "params.max_tokens"),
        ("openai", "o4-mini", {"reasoning_effort": "minimal"}, "params.reasoning_effort"),
    ],
)
def test_a_parameter_outside_the_models_range_is_refused(
    provider: str, model: str, params: dict[str, object], field: str
) -> None:
    assert fields_with_errors(provider, model, **params) == [field]


def test_max_tokens_above_the_maximum_output_says_so() -> None:
    [error] = validate_model_params("openai", "gpt-4o-mini", ModelParams(max_tokens=20000))
    assert "16384" in error["message"] and "output" in error["message"]


@pytest.mark.parametrize(
    ("provider", "model", "params", "field"),
    [
        ("openai", "gpt-4.1", {"reasoning_effort": "low"}, "params.reasoning_effort"),
        ("openai", "o4-mini", {"temperature": 0.2}, "params.temperature"),
        ("openai", "o4-mini", {"top_p": 0.5}, "params.top_p"),
        ("openai", "gpt-4o", {"budget_tokens": 2048}, "params.budget_tokens"),
        ("anthropic", "claude-sonnet-4-5", {"reasoning_effort": "high"}, "params.reasoning_effort"),
        ("offline", "offline-1", {"budget_tokens": 2048}, "params.budget_tokens"),
    ],
)
def test_a_parameter_the_model_does_not_take_is_refused(
    provider: str, model: str, params: dict[str, object], field: str
) -> None:
    errors = validate_model_params(provider, model, ModelParams(**params))  # type: ignore[arg-type]
    assert [e["field"] for e in errors] == [field]
    assert "does not support" in errors[0]["message"]


def test_a_thinking_budget_must_stay_below_max_tokens_explicit_or_default() -> None:
    assert fields_with_errors(
        "anthropic", "claude-sonnet-4-5", budget_tokens=4096, max_tokens=4096
    ) == ["params.budget_tokens"]
    # the model's default max_tokens (4096) applies when none is set
    assert fields_with_errors("anthropic", "claude-sonnet-4-5", budget_tokens=8000) == [
        "params.budget_tokens"
    ]


def test_every_problem_is_reported_at_once() -> None:
    assert fields_with_errors(
        "openai", "o4-mini", temperature=0.1, max_tokens=100001, reasoning_effort="minimal"
    ) == ["params.temperature", "params.max_tokens", "params.reasoning_effort"]
