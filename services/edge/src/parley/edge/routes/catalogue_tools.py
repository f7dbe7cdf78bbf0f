"""`/api/v1/tools` and `/api/v1/strategies`: the built-in tools and execution strategies.

Served from the catalogues in contracts, the same ones the registry validates agent
definitions against; they need no service and no event.
"""

from typing import Annotated

import msgspec
from litestar import Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.contracts.strategies import STRATEGY_CATALOGUE, StrategyDescriptor
from parley.contracts.tools import TOOL_CATALOGUE, ToolDescriptor
from parley.edge._paging import page_by_key
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.schemas import Pagination

__all__ = ["strategy_router", "tool_router"]

_CATEGORIES = sorted({t.category for t in TOOL_CATALOGUE.values()})
Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size.")]
Cursor = Annotated[str | None, Parameter(required=False, description="`next_cursor`.")]


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(ErrorEnvelope, description="Error envelope") for c in codes}


def _not_found(kind: str, name: str, names: list[str]) -> ApiError:
    return ApiError(
        ErrorCode.NOT_FOUND,
        f"no {kind} {name[:64]!r}; use one of {', '.join(sorted(names))}",
        {kind: name[:64]},
    )


class ToolList(msgspec.Struct, kw_only=True):
    """A page of tools."""

    data: list[ToolDescriptor]
    pagination: Pagination


class ToolResponse(msgspec.Struct, kw_only=True):
    """One tool."""

    data: ToolDescriptor


class StrategyList(msgspec.Struct, kw_only=True):
    """A page of strategies."""

    data: list[StrategyDescriptor]
    pagination: Pagination


class StrategyResponse(msgspec.Struct, kw_only=True):
    """One strategy."""

    data: StrategyDescriptor


@get("/", summary="List tools", description="Ordered by name.", responses=_errors(400, 422))
async def list_tools(
    category: Annotated[
        str | None, Parameter(required=False, description=", ".join(_CATEGORIES) + ".")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ToolList:
    """Built-in tools an agent may list, with their config and parameter schemas."""
    if category is not None and category not in _CATEGORIES:
        message = f"expected one of {', '.join(_CATEGORIES)}"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid category {category[:40]!r}: {message}",
            [{"field": "query.category", "message": message}],
        )
    found = [t for t in TOOL_CATALOGUE.values() if category is None or t.category == category]
    page, pagination = page_by_key(found, lambda t: t.name, limit=limit, cursor=cursor)
    return ToolList(data=page, pagination=pagination)


@get("/{name:str}", summary="Read a tool", responses=_errors(404))
async def get_tool(name: str) -> ToolResponse:
    """One built-in tool."""
    descriptor = TOOL_CATALOGUE.get(name)
    if descriptor is None:
        raise _not_found("tool", name, list(TOOL_CATALOGUE))
    return ToolResponse(data=descriptor)


@get("/", summary="List strategies", description="Ordered by name.", responses=_errors(400))
async def list_strategies(limit: Limit = 50, cursor: Cursor = None) -> StrategyList:
    """Execution strategies, with their config schemas."""
    page, pagination = page_by_key(
        STRATEGY_CATALOGUE.values(), lambda s: s.name, limit=limit, cursor=cursor
    )
    return StrategyList(data=page, pagination=pagination)


@get("/{name:str}", summary="Read a strategy", responses=_errors(404))
async def get_strategy(name: str) -> StrategyResponse:
    """One execution strategy."""
    descriptor = STRATEGY_CATALOGUE.get(name)
    if descriptor is None:
        raise _not_found("strategy", name, list(STRATEGY_CATALOGUE))
    return StrategyResponse(data=descriptor)


tool_router = Router(path="/api/v1/tools", route_handlers=[list_tools, get_tool], tags=["tools"])
"""Every `/api/v1/tools` route."""

strategy_router = Router(
    path="/api/v1/strategies",
    route_handlers=[list_strategies, get_strategy],
    tags=["strategies"],
)
"""Every `/api/v1/strategies` route."""
