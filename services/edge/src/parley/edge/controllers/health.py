"""Liveness and readiness: `/health` `/livez` (always 200), `/ready` `/readyz`."""

import msgspec
from litestar import get
from litestar.datastructures import State

from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Edge
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError

__all__ = ["health_routes"]


class Health(msgspec.Struct, kw_only=True):
    """Process status."""

    status: str
    """`ok` or `ready`."""
    applied_position: int | None = None
    """Position the agents projection has applied."""
    target_position: int | None = None
    """Store position the projection had to reach at start."""


@get(["/health", "/livez"], tags=["health"], summary="Liveness", sync_to_thread=False)
def health() -> Data[Health]:
    """200 while the process runs."""
    return Data(data=Health(status="ok"))


@get(["/ready", "/readyz"], tags=["health"], summary="Readiness", sync_to_thread=False)
def ready(state: State) -> Data[Health]:
    """200 once NATS is connected and the projections have caught up with the store."""
    edge: Edge | None = state.get("edge")  # set once start-up has connected
    connected = edge is not None and edge.nc.is_connected
    if (
        edge is None
        or not connected
        or not all(
            view.ready
            for view in (
                edge.agents,
                edge.runtime,
                edge.clusters,
                edge.messages,
                edge.tasks,
                edge.keys,
            )
        )
    ):
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "not ready: waiting for NATS and the projections to catch up",
            {
                "nats_connected": connected,
                "applied_position": edge.agents.applied_position if edge else None,
                "target_position": edge.agents.target_position if edge else None,
                "runtime_applied_position": edge.runtime.applied_position if edge else None,
                "clusters_applied_position": edge.clusters.applied_position if edge else None,
                "messages_applied_position": edge.messages.applied_position if edge else None,
            },
            headers={"Retry-After": "1"},
        )
    return Data(
        data=Health(
            status="ready",
            applied_position=edge.agents.applied_position,
            target_position=edge.agents.target_position,
        )
    )


health_routes = [health, ready]
"""The health route handlers."""
