"""Liveness and readiness: `/health` `/livez` (always 200), `/ready` `/readyz`.

Ready means what really works for the edge: NATS connected, the event store answering, its
KV buckets present (:class:`~parley.kit.needs.Keeper`), the projections caught up, and not
shutting down. Anything else is `503 SERVICE_UNAVAILABLE` in the error envelope, with what is
missing in `details`.
"""

import msgspec
from litestar import get
from litestar.datastructures import State

from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Edge
from parley.edge.http.envelopes import Data
from parley.edge.http.errors import ApiError
from parley.kit.needs import Keeper
from parley.kit.needs import Readiness

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
    """200 while NATS is connected, the event store answers, the edge's buckets are there
    and the projections have caught up with the store; 503 otherwise."""
    edge: Edge | None = state.get("edge")  # set once start-up has connected
    keeper: Keeper | None = state.get("keeper")
    works = keeper.readiness() if keeper is not None else None
    connected = works is not None and works.nats_connected
    if (
        edge is None
        or works is None
        or not works.ready
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
            _why(works),
            {
                "nats_connected": connected,
                "store_reachable": works is not None and works.store_reachable,
                "missing": works.missing if works is not None else [],
                "stopping": works is not None and works.stopping,
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


def _why(works: Readiness | None) -> str:
    if works is None or not works.nats_connected:
        return "not ready: NATS is not connected"
    if works.stopping:
        return "not ready: the edge is shutting down"
    if not works.store_reachable:
        return "not ready: the event store does not answer"
    if works.missing:
        return "not ready: missing on NATS: " + ", ".join(works.missing)
    return "not ready: waiting for the projections to catch up"


health_routes = [health, ready]
"""The health route handlers."""
