"""The models catalogue: each provider's models, their limits, parameters and prices.

The catalogue is data (``data/models.toml``), loaded once by :func:`load_catalogue`. The
registry checks agent definitions with :func:`validate_model_params`; the runtime checks
session parameters with the same function and prices calls with :meth:`ModelCatalogue.price`.
"""

import tomllib
from functools import cache
from importlib.resources import files
from typing import Literal

import msgspec

from parley.contracts.errors import ErrorCode
from parley.contracts.registry import ModelParams

__all__ = [
    "WILDCARD",
    "Capabilities",
    "ChoiceParameter",
    "ModelCatalogue",
    "ModelInfo",
    "ModelParameters",
    "ParameterRange",
    "Price",
    "UnknownModelError",
    "UNLISTED_MODELS_ACCEPTED",
    "load_catalogue",
    "model_warnings",
    "validate_model_params",
]

WILDCARD = "*"
"""A catalogue entry with this model name matches any model of its provider."""
UNLISTED_MODELS_ACCEPTED = frozenset({"anthropic", "openai"})
"""Providers whose models the catalogue may not list yet (a model released after it):
such a model is accepted with :func:`model_warnings` and an unknown price."""

Capability = Literal["tools", "streaming", "multimodal", "reasoning"]
ModelType = Literal["chat", "reasoning"]


class _Data(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ParameterRange(_Data, frozen=True):
    """The values a numeric parameter may take."""

    min: int | float
    """Smallest accepted value."""
    max: int | float
    """Largest accepted value."""
    default: int | float | None = None
    """Value used when the agent sets none (None: the provider's default)."""


class ChoiceParameter(_Data, frozen=True):
    """The values an enumerated parameter may take."""

    allowed: list[str]
    """Accepted values."""
    default: str | None = None
    """Value used when the agent sets none (None: the provider's default)."""


class ModelParameters(_Data, frozen=True):
    """The parameters a model accepts; an absent one is not supported by the model."""

    temperature: ParameterRange | None = None
    """Sampling temperature."""
    top_p: ParameterRange | None = None
    """Nucleus sampling mass."""
    max_tokens: ParameterRange | None = None
    """Output tokens per call; its max is the model's maximum output."""
    reasoning_effort: ChoiceParameter | None = None
    """Reasoning effort (OpenAI reasoning models)."""
    budget_tokens: ParameterRange | None = None
    """Thinking-token budget (Anthropic extended thinking); must stay below max_tokens."""


class Capabilities(_Data, frozen=True):
    """What a model can do."""

    tools: bool = False
    """Calls tools."""
    streaming: bool = False
    """Streams tokens."""
    multimodal: bool = False
    """Accepts inputs other than text."""
    reasoning: bool = False
    """Thinks before answering (reasoning effort or a thinking budget)."""


class Price(_Data, frozen=True):
    """List price in US dollars per million tokens."""

    input_per_mtok: float
    """USD per million input tokens."""
    output_per_mtok: float
    """USD per million output tokens."""
    currency: Literal["USD"] = "USD"
    """Always USD."""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost in USD of a call with this many input and output tokens."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class ModelInfo(_Data, frozen=True, kw_only=True):
    """One model of one provider."""

    provider: str
    """`offline`, `anthropic`, `openai` or `openai_compatible`."""
    model: str
    """The provider's model id, or `*` for any model of the provider."""
    display_name: str
    """Human-readable name."""
    description: str = ""
    """What the model is for."""
    model_type: ModelType
    """`chat` or `reasoning`."""
    context_window: int | None = None
    """Input + output tokens the model holds (None: depends on the served model)."""
    max_output_tokens: int | None = None
    """Most output tokens per call (None: depends on the served model)."""
    inputs: list[Literal["text", "image"]]
    """Input kinds accepted."""
    capabilities: Capabilities
    """What the model can do."""
    params: ModelParameters
    """Parameters accepted, with their ranges and defaults."""
    price: Price
    """List price."""

    def has(self, capability: Capability) -> bool:
        """Whether the model has ``capability``."""
        return bool(getattr(self.capabilities, capability))


class UnknownModelError(LookupError):
    """A provider/model pair the catalogue does not list."""

    def __init__(self, provider: str, model: str) -> None:
        super().__init__(f"no model {model!r} of provider {provider!r} in the catalogue")
        self.provider, self.model = provider, model


class ModelCatalogue(_Data, frozen=True):
    """Every model the platform knows, in catalogue order."""

    models: list[ModelInfo]
    """The entries."""

    def find(self, provider: str, model: str) -> ModelInfo | None:
        """The entry for ``model`` of ``provider``; a wildcard entry matches any model."""
        wildcard = None
        for info in self.models:
            if info.provider != provider:
                continue
            if info.model == model:
                return info
            if info.model == WILDCARD:
                wildcard = info
        return wildcard

    def price(self, provider: str, model: str) -> Price:
        """The price of ``model`` of ``provider``.

        Raises:
            UnknownModelError: If the catalogue has no such model.
        """
        info = self.find(provider, model)
        if info is None:
            raise UnknownModelError(provider, model)
        return info.price

    def providers(self) -> list[str]:
        """Providers with at least one model, in catalogue order."""
        return list(dict.fromkeys(info.provider for info in self.models))

    def models_of(self, provider: str) -> list[str]:
        """Model names listed for ``provider`` (``*`` for a wildcard)."""
        return [info.model for info in self.models if info.provider == provider]

    def select(
        self,
        *,
        provider: str | None = None,
        capability: Capability | None = None,
        model_type: ModelType | None = None,
    ) -> list[ModelInfo]:
        """The entries matching every given filter, in catalogue order."""
        return [
            info
            for info in self.models
            if (provider is None or info.provider == provider)
            and (capability is None or info.has(capability))
            and (model_type is None or info.model_type == model_type)
        ]


@cache
def load_catalogue() -> ModelCatalogue:
    """The catalogue shipped in ``parley.contracts``, extended by the operator's file named by
    ``PARLEY_MODELS_FILE`` if set (read and checked once per process).

    Raises:
        CatalogueError: When the operator's file cannot be read or is not a catalogue.
    """
    from parley.contracts.models_file import extended  # noqa: PLC0415 - it imports this module

    text = (files("parley.contracts") / "data" / "models.toml").read_text(encoding="utf-8")
    return extended(msgspec.convert(tomllib.loads(text), ModelCatalogue))


def validate_model_params(provider: str, model: str, params: ModelParams) -> list[dict[str, str]]:
    """Check a model choice and its parameters against the catalogue.

    Args:
        provider: Provider name.
        model: Model name at the provider.
        params: The parameters set (None fields are not set and always pass).

    Returns:
        Field-level problems, ``[{"field", "code", "message"}]`` with ``field`` ``provider``,
        ``model`` or ``params.<name>``; empty when the choice is valid.
    """
    catalogue = load_catalogue()
    info = catalogue.find(provider, model)
    if info is None:
        known = catalogue.models_of(provider)
        if known and provider in UNLISTED_MODELS_ACCEPTED:
            return []  # a model newer than the catalogue: accepted, with model_warnings()
        if not known:
            return [
                _error(
                    "provider",
                    f"unknown provider {provider!r}; use one of {', '.join(catalogue.providers())}",
                )
            ]
        return [
            _error(
                "model",
                f"unknown model {model!r} for provider {provider!r}; use one of"
                f" {', '.join(known)} (see GET /api/v1/models?provider={provider})",
            )
        ]
    errors: list[dict[str, str]] = []
    for name in ModelParams.__struct_fields__:
        value = getattr(params, name)
        if value is None:
            continue
        accepted = getattr(info.params, name)
        if accepted is None:
            errors.append(
                _error(f"params.{name}", f"{info.model} does not support {name}; remove it")
            )
        elif isinstance(accepted, ChoiceParameter):
            if value not in accepted.allowed:
                errors.append(
                    _error(
                        f"params.{name}",
                        f"{name} {value!r} is not supported by {info.model}; use one of"
                        f" {', '.join(accepted.allowed)}",
                    )
                )
        elif name == "max_tokens" and value > accepted.max:
            errors.append(
                _error(
                    "params.max_tokens",
                    f"max_tokens {value} is above the {accepted.max} output tokens"
                    f" {info.model} can produce",
                )
            )
        elif not accepted.min <= value <= accepted.max:
            errors.append(
                _error(
                    f"params.{name}",
                    f"{name} {value} is outside {accepted.min}–{accepted.max} for {info.model}",
                )
            )
    budget, cap = params.budget_tokens, _effective_max_tokens(info, params)
    if budget is not None and info.params.budget_tokens is not None and cap is not None:
        if budget >= cap and not any(e["field"] == "params.budget_tokens" for e in errors):
            errors.append(
                _error(
                    "params.budget_tokens",
                    f"budget_tokens {budget} must be below max_tokens ({cap}); raise max_tokens"
                    " or lower the budget",
                )
            )
    return errors


def model_warnings(provider: str, model: str) -> list[str]:
    """Warnings about a model choice :func:`validate_model_params` accepts: a model of a real
    provider that the catalogue does not list (parameters unchecked, price unknown)."""
    catalogue = load_catalogue()
    if provider not in UNLISTED_MODELS_ACCEPTED or catalogue.find(provider, model) is not None:
        return []
    return [
        f"model {model!r} of {provider!r} is not in the models catalogue: it is used as given,"
        " its parameters are not checked against its limits and its price is unknown (calls"
        " cost 0 in usage, budgets and quotas, with usage.price_unknown; PARLEY_MODELS_FILE"
        " can list it with its price)"
    ]


def _effective_max_tokens(info: ModelInfo, params: ModelParams) -> int | float | None:
    if params.max_tokens is not None:
        return params.max_tokens
    return info.params.max_tokens.default if info.params.max_tokens is not None else None


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "code": ErrorCode.VALIDATION_ERROR.value, "message": message}
