"""`/api/v1/models`: the models catalogue (providers' models, limits, parameters, prices).

Served from the catalogue shipped in contracts, the same one the registry validates agent
definitions against; it needs no service and no event.
"""

from typing import Annotated, get_args

import msgspec
from litestar import Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.contracts.models import Capability, ModelInfo, ModelType, load_catalogue
from parley.edge._paging import page_by_key
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.schemas import Pagination

__all__ = ["model_router"]

_CAPABILITIES: tuple[str, ...] = get_args(Capability)
_MODEL_TYPES: tuple[str, ...] = get_args(ModelType)


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(ErrorEnvelope, description="Error envelope") for c in codes}


class ModelList(msgspec.Struct, kw_only=True):
    """A page of models."""

    data: list[ModelInfo]
    pagination: Pagination


class ModelResponse(msgspec.Struct, kw_only=True):
    """One model."""

    data: ModelInfo


def _check(field: str, value: str | None, allowed: tuple[str, ...] | list[str]) -> None:
    if value is not None and value not in allowed:
        message = f"expected one of {', '.join(allowed)}"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid {field} {value[:40]!r}: {message}",
            [{"field": f"query.{field}", "message": message}],
        )


@get(
    "/",
    summary="List models",
    description='Filters combine with AND. `model = "*"` stands for any model of its'
    " provider (OpenAI-compatible servers). Ordered by provider, then model.",
    responses=_errors(400, 422),
)
async def list_models(
    provider: Annotated[str | None, Parameter(required=False, description="Provider.")] = None,
    capability: Annotated[
        str | None, Parameter(required=False, description=", ".join(_CAPABILITIES) + ".")
    ] = None,
    model_type: Annotated[
        str | None, Parameter(required=False, description=", ".join(_MODEL_TYPES) + ".")
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> ModelList:
    """A page of the models catalogue."""
    catalogue = load_catalogue()
    _check("provider", provider, catalogue.providers())
    _check("capability", capability, _CAPABILITIES)
    _check("model_type", model_type, _MODEL_TYPES)
    found = catalogue.select(
        provider=provider,
        capability=capability,  # type: ignore[arg-type]
        model_type=model_type,  # type: ignore[arg-type]
    )
    page, pagination = page_by_key(
        found, lambda m: f"{m.provider}/{m.model}", limit=limit, cursor=cursor
    )
    return ModelList(data=page, pagination=pagination)


@get(
    "/{provider:str}/{model:path}",
    summary="Read a model",
    description="Model names may contain `/`. A provider with a wildcard entry answers it for"
    " any model name.",
    responses=_errors(404),
)
async def get_model(provider: str, model: str) -> ModelResponse:
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
    return ModelResponse(data=info)


model_router = Router(
    path="/api/v1/models", route_handlers=[list_models, get_model], tags=["models"]
)
"""Every `/api/v1/models` route."""
