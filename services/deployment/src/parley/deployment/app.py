"""Wiring: the deployment service's app, through :func:`parley.kit.app.service_app`.

Commands arrive on ``parley.cmd.deployment.<verb>`` (:data:`~parley.deployment.handlers.ROUTES`).
On start-up the board catches up with the store, which re-arms the timer of every running
stage (and applies promoted deployments a dead process left). No connections at import time.
"""

import logging

from faststream import FastStream

from parley.contracts.deployments import SERVICE
from parley.contracts.deployments import Health
from parley.deployment.handlers import ROUTES
from parley.deployment.handlers import Deployments
from parley.deployment.handlers import reply_error
from parley.deployment.settings import DeploymentSettings
from parley.deployment.workers.board import Board
from parley.kit.app import Connections
from parley.kit.app import service_app

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_CATCH_UP_S = 60.0
"""How long start-up waits for the board to reach the store's end."""


def create_app(settings: DeploymentSettings) -> FastStream:
    """The deployment service: immediate, rolling, blue-green and canary rollouts of agent
    definitions (and of a cluster's template)."""

    async def start(connections: Connections) -> Deployments:
        handlers: list[Deployments] = []

        async def on_due(namespace: str, deployment_id: str, health: Health | None) -> None:
            await handlers[0].on_due(namespace, deployment_id, health)

        board = Board(connections.store, on_due)
        handlers.append(Deployments(connections.store, connections.nc, board, settings))
        await board.start()
        connections.stack.push_async_callback(board.stop)
        if not await board.wait_for(board.target_position, _CATCH_UP_S):
            log.warning("the board did not catch up in %ss", _CATCH_UP_S)
        return handlers[0]

    return service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_error,
        description="Rollouts of agent definitions: immediate, rolling, blue-green, canary, with"
        " rollback.",
    )
