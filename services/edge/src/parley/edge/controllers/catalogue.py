"""`/api/v1/models`, `/api/v1/tools` and `/api/v1/strategies`: the catalogues.

Served from the catalogues shipped in contracts (models with their limits, parameters and
prices; built-in tools; execution strategies), the same ones the registry validates agent
definitions against; they need no service and no event.
"""

from collections.abc import Mapping
from typing import Annotated
from typing import TypeVar
from typing import get_args

from litestar import Router
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from parley.contracts.catalogue import PROVIDERS
from parley.contracts.errors import ErrorCode
from parley.contracts.models import Capability
from parley.contracts.models import ModelInfo
from parley.contracts.models import ModelType
from parley.contracts.models import load_catalogue
from parley.contracts.strategies import STRATEGY_CATALOGUE
from parley.contracts.strategies import StrategyDescriptor
from parley.contracts.tools import TOOL_CATALOGUE
from parley.contracts.tools import ToolDescriptor
from parley.edge.http.auth import EVERY_NAMESPACE
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid_value
from parley.edge.http.paging import Paging
from parley.edge.http.params import canonical
from parley.edge.http.params import one_of

__all__ = ["model_router", "strategy_router", "tool_router"]

T = TypeVar("T")

_CAPABILITIES: tuple[str, ...] = get_args(Capability)
_MODEL_TYPES: tuple[str, ...] = get_args(ModelType)
_CATEGORIES = sorted({t.category for t in TOOL_CATALOGUE.values()})


def _check(name: str, value: str | None, allowed: tuple[str, ...] | list[str]) -> str | None:
    """``value`` as spelled in ``allowed`` (any case is accepted), or ``None`` when absent."""
    if value is None:
        return None
    found = canonical(value, allowed)
    if found is None:
        raise invalid_value(name, value, f"expected one of {', '.join(allowed)}")
    return found


def _named(kind: str, catalogue: Mapping[str, T], name: str) -> Data[T]:
    """The entry ``name`` of ``catalogue``, or ``404`` listing the names there are."""
    entry = catalogue.get(name)
    if entry is None:
        raise ApiError(
            ErrorCode.NOT_FOUND,
            f"no {kind} {name[:64]!r}; use one of {', '.join(sorted(catalogue))}",
            {kind: name[:64]},
        )
    return Data(data=entry)


# --- models ------------------------------------------------------------------------------


@get(
    "/",
    summary="List models",
    description='Filters combine with AND. `model = "*"` stands for any model of its'
    " provider (OpenAI-compatible servers). Ordered by provider, then model.",
    responses=error_responses(400, 422),
)
async def list_models(
    paging: NamedDependency[Paging],
    provider: Annotated[str | None, one_of(sorted(PROVIDERS))] = None,
    capability: Annotated[str | None, one_of(_CAPABILITIES)] = None,
    model_type: Annotated[str | None, one_of(_MODEL_TYPES)] = None,
) -> Page[ModelInfo]:
    """A page of the models catalogue."""
    catalogue = load_catalogue()
    provider = _check("provider", provider, catalogue.providers())
    capability = _check("capability", capability, _CAPABILITIES)
    model_type = _check("model_type", model_type, _MODEL_TYPES)
    found = catalogue.select(
        provider=provider,
        capability=capability,  # type: ignore[arg-type]
        model_type=model_type,  # type: ignore[arg-type]
    )
    return paging.page(found, lambda m: f"{m.provider}/{m.model}")


@get(
    "/{provider:str}/{model:path}",
    summary="Read a model",
    description="Model names may contain `/`. A provider with a wildcard entry answers it for"
    " any model name.",
    responses=error_responses(404),
)
async def get_model(provider: FromPath[str], model: FromPath[str]) -> Data[ModelInfo]:
    """One model of one provider."""
    name = model.lstrip("/")
    info = load_catalogue().find(provider, name)
    if info is None:
        raise ApiError(
            ErrorCode.NOT_FOUND,
            f"no model {name[:128]!r} of provider {provider[:32]!r}; list them with"
            " GET /api/v1/models",
            {"provider": provider[:32], "model": name[:128]},
        )
    return Data(data=info)


# --- tools and strategies ----------------------------------------------------------------


@get("/", summary="List tools", description="Ordered by name.", responses=error_responses(400, 422))
async def list_tools(
    paging: NamedDependency[Paging],
    category: Annotated[str | None, one_of(_CATEGORIES)] = None,
) -> Page[ToolDescriptor]:
    """Built-in tools an agent may list, with their config and parameter schemas."""
    category = _check("category", category, _CATEGORIES)
    found = [t for t in TOOL_CATALOGUE.values() if category is None or t.category == category]
    return paging.page(found, lambda t: t.name)


@get("/{name:str}", summary="Read a tool", responses=error_responses(404))
async def get_tool(name: FromPath[str]) -> Data[ToolDescriptor]:
    """One built-in tool."""
    return _named("tool", TOOL_CATALOGUE, name)


@get("/", summary="List strategies", description="Ordered by name.", responses=error_responses(400))
async def list_strategies(paging: NamedDependency[Paging]) -> Page[StrategyDescriptor]:
    """Execution strategies, with their config schemas."""
    return paging.page(STRATEGY_CATALOGUE.values(), lambda s: s.name)


@get("/{name:str}", summary="Read a strategy", responses=error_responses(404))
async def get_strategy(name: FromPath[str]) -> Data[StrategyDescriptor]:
    """One execution strategy."""
    return _named("strategy", STRATEGY_CATALOGUE, name)


_GLOBAL = {EVERY_NAMESPACE: True}  # the catalogue is the same in every namespace

model_router = Router(
    path="/api/v1/models", route_handlers=[list_models, get_model], tags=["models"], opt=_GLOBAL
)
"""Every `/api/v1/models` route."""

tool_router = Router(
    path="/api/v1/tools", route_handlers=[list_tools, get_tool], tags=["tools"], opt=_GLOBAL
)
"""Every `/api/v1/tools` route."""

strategy_router = Router(
    path="/api/v1/strategies",
    route_handlers=[list_strategies, get_strategy],
    tags=["strategies"],
    opt=_GLOBAL,
)
"""Every `/api/v1/strategies` route."""
