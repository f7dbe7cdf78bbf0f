"""The edge's own request and response shapes: the `{"data": …}` envelopes and small bodies."""

from typing import Annotated

import msgspec
from msgspec import Meta

from parley.contracts.registry import AgentAction, AgentView

__all__ = [
    "ActionBody",
    "ActionRequest",
    "AgentList",
    "AgentResponse",
    "DeletedAgent",
    "DeletedResponse",
    "Pagination",
]

Reason = Annotated[str, Meta(max_length=1024, description="Why; recorded in the event.")]


class ActionBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional body of `POST /agents/{id}/start|pause|resume|stop`."""

    reason: Reason | None = None
    """Why; recorded in the event."""
    force: bool = False
    """Allow `stop` from `failed`."""


class ActionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /agents/{id}/actions`."""

    action: AgentAction
    """`start`, `pause`, `resume`, `stop` or `fail`."""
    reason: Reason | None = None
    """Why; recorded in the event."""
    force: bool = False
    """Allow `stop` from `failed`."""


class AgentResponse(msgspec.Struct, kw_only=True):
    """One agent."""

    data: AgentView


class Pagination(msgspec.Struct, kw_only=True):
    """Cursor pagination of a list."""

    limit: int
    """Page size asked for."""
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""
    has_more: bool
    """Whether another page follows."""
    total_count: int
    """Items matching the filters, over all pages."""


class AgentList(msgspec.Struct, kw_only=True):
    """A page of agents."""

    data: list[AgentView]
    pagination: Pagination


class DeletedAgent(msgspec.Struct, kw_only=True):
    """What a delete did."""

    id: str
    """The deleted agent's id."""
    deleted: bool
    """Always true."""
    version: int
    """Stream version of the `agent.deleted` event."""


class DeletedResponse(msgspec.Struct, kw_only=True):
    """The outcome of `DELETE /agents/{id}`."""

    data: DeletedAgent
