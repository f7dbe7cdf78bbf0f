"""Wiring: the registry's FastStream app. No connections at import time."""

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faststream import FastStream
from faststream.nats import NatsBroker

from parley.contracts.clusters import CreateCluster, DeleteCluster, ScaleCluster, UpdateCluster
from parley.contracts.personas import CreatePersona, DeletePersona
from parley.contracts.registry import (
    SERVICE,
    AgentActionCommand,
    CreateAgent,
    DeleteAgent,
    UpdateAgent,
)
from parley.eventstore.factory import open_store
from parley.kit.service import add_command_route, create_service
from parley.kit.settings import ServiceSettings
from parley.registry.clusters import create_cluster, delete_cluster, scale_cluster, update_cluster
from parley.registry.handlers import Registry, reply_for_error
from parley.registry.personas import create_persona, delete_persona

__all__ = ["create_app"]


def create_app(settings: ServiceSettings) -> FastStream:
    """The registry service: agent commands on ``parley.cmd.registry.<verb>``."""
    holder: dict[str, Registry] = {}

    def route(
        broker: NatsBroker,
        verb: str,
        command_type: type[Any],
        handle: Callable[[Registry, Any], Awaitable[msgspec.Struct]],
    ) -> None:
        add_command_route(
            broker,
            SERVICE,
            verb,
            command_type,
            lambda command: handle(holder["registry"], command),
            on_error=reply_for_error,
            max_workers=settings.max_in_flight,
        )

    def register(broker: NatsBroker) -> None:
        route(broker, "create_agent", CreateAgent, Registry.create_agent)
        route(broker, "update_agent", UpdateAgent, Registry.update_agent)
        route(broker, "agent_action", AgentActionCommand, Registry.agent_action)
        route(broker, "delete_agent", DeleteAgent, Registry.delete_agent)
        route(broker, "create_persona", CreatePersona, lambda r, c: create_persona(r.store, c))
        route(broker, "delete_persona", DeletePersona, lambda r, c: delete_persona(r.store, c))
        route(broker, "create_cluster", CreateCluster, create_cluster)
        route(broker, "update_cluster", UpdateCluster, update_cluster)
        route(broker, "delete_cluster", DeleteCluster, delete_cluster)
        route(broker, "scale_cluster", ScaleCluster, scale_cluster)

    app = create_service(SERVICE, settings, register, description="Agents and their lifecycle.")

    @app.on_startup
    async def open_event_store() -> None:
        holder["registry"] = Registry(
            await open_store(
                backend=settings.eventstore,
                nats_url=settings.nats_url,
                kurrentdb_url=settings.kurrentdb_url,
            )
        )

    @app.after_shutdown
    async def close_event_store() -> None:
        if registry := holder.pop("registry", None):
            await registry.store.close()

    return app
