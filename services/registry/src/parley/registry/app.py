"""Wiring: the registry's FastStream app and its command table. No connections at import time.

With the JetStream store the registry also runs the external events relay
(:mod:`parley.registry.workers.relay`).
"""

from faststream import FastStream

from parley.contracts.clusters import ChangeClusterTemplate
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ResizeCluster
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import RecordApiKeyUse
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import RotateApiKey
from parley.contracts.memory import Remember
from parley.contracts.personas import CreatePersona
from parley.contracts.personas import DeletePersona
from parley.contracts.registry import SERVICE
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import UpdateAgent
from parley.kit.app import Connections
from parley.kit.app import Route
from parley.kit.app import service_app
from parley.registry.clusters import change_cluster_template
from parley.registry.clusters import create_cluster
from parley.registry.clusters import delete_cluster
from parley.registry.clusters import resize_cluster
from parley.registry.clusters import scale_cluster
from parley.registry.clusters import update_cluster
from parley.registry.handlers import Registry
from parley.registry.handlers import reply_for_error
from parley.registry.keys import create_api_key
from parley.registry.keys import record_api_key_use
from parley.registry.keys import revoke_api_key
from parley.registry.keys import rotate_api_key
from parley.registry.memory import remember
from parley.registry.settings import RegistrySettings
from parley.registry.workers.relay import start_relay

__all__ = ["ROUTES", "create_app"]


ROUTES: dict[str, Route[Registry]] = {
    "create_agent": (CreateAgent, Registry.create_agent),
    "update_agent": (UpdateAgent, Registry.update_agent),
    "agent_action": (AgentActionCommand, Registry.agent_action),
    "delete_agent": (DeleteAgent, Registry.delete_agent),
    "create_persona": (CreatePersona, Registry.create_persona),
    "delete_persona": (DeletePersona, Registry.delete_persona),
    "create_cluster": (CreateCluster, create_cluster),
    "update_cluster": (UpdateCluster, update_cluster),
    "delete_cluster": (DeleteCluster, delete_cluster),
    "scale_cluster": (ScaleCluster, scale_cluster),
    "resize_cluster": (ResizeCluster, resize_cluster),
    "change_cluster_template": (ChangeClusterTemplate, change_cluster_template),
    "create_api_key": (CreateApiKey, create_api_key),
    "rotate_api_key": (RotateApiKey, rotate_api_key),
    "revoke_api_key": (RevokeApiKey, revoke_api_key),
    "record_api_key_use": (RecordApiKeyUse, record_api_key_use),
    "remember": (Remember, remember),
}
"""Verb → (command type, handler)."""


def create_app(settings: RegistrySettings) -> FastStream:
    """The registry service: agent, persona, cluster and API key commands on
    ``parley.cmd.registry.<verb>``."""

    async def start(connections: Connections) -> Registry:
        await start_relay(connections, settings)
        return Registry(connections.store)

    return service_app(
        SERVICE,
        settings,
        routes=ROUTES,
        start=start,
        reply_error=reply_for_error,
        description="Agents and their lifecycle, personas, clusters and API keys.",
        raw=True,  # every create, start and pause goes through here
    )
