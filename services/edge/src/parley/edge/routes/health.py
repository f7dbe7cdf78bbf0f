"""Liveness and readiness: `/health` `/livez` (always 200), `/ready` `/readyz`."""

import msgspec
from litestar import get
from litestar.datastructures import State

from parley.contracts.errors import ErrorCode
from parley.edge.errors import ApiError

__all__ = ["health_routes"]


class Health(msgspec.Struct, kw_only=True):
    """Process status."""

    status: str
    """`ok` or `ready`."""
    applied_position: int | None = None
    """Position the agents projection has applied."""
    target_position: int | None = None
    """Store position the projection had to reach at start."""


class HealthResponse(msgspec.Struct, kw_only=True):
    """`{"data": {...}}`."""

    data: Health


@get(["/health", "/livez"], tags=["health"], summary="Liveness", sync_to_thread=False)
def health() -> HealthResponse:
    """200 while the process runs."""
    return HealthResponse(data=Health(status="ok"))


@get(["/ready", "/readyz"], tags=["health"], summary="Readiness", sync_to_thread=False)
def ready(state: State) -> HealthResponse:
    """200 once NATS is connected and the projections have caught up with the store."""
    projection = getattr(state, "projection", None)
    runtime = getattr(state, "runtime", None)
    clusters = getattr(state, "clusters", None)
    messages = getattr(state, "messages", None)
    tasks = getattr(state, "tasks", None)
    nc = getattr(state, "nc", None)
    connected = nc is not None and nc.is_connected
    caught_up = (
        projection is not None
        and projection.ready
        and all(extra is None or extra.ready for extra in (runtime, clusters, messages, tasks))
    )
    if projection is None or not connected or not caught_up:
        raise ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "not ready: waiting for NATS and the projections to catch up",
            {
                "nats_connected": connected,
                "applied_position": projection.applied_position if projection else None,
                "target_position": projection.target_position if projection else None,
                "runtime_applied_position": runtime.applied_position if runtime else None,
                "clusters_applied_position": clusters.applied_position if clusters else None,
                "messages_applied_position": messages.applied_position if messages else None,
            },
            headers={"Retry-After": "1"},
        )
    return HealthResponse(
        data=Health(
            status="ready",
            applied_position=projection.applied_position,
            target_position=projection.target_position,
        )
    )


health_routes = [health, ready]
"""The health route handlers."""
