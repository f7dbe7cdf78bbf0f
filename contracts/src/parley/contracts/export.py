"""Export JSON Schemas of every command, reply and event, and an AsyncAPI 3.0 document.

Other systems (any language) publish to Parley with these. ``python -m parley.contracts``
writes them under ``contracts/schemas/``; a test fails when the checked-in copy is stale.
"""

import json
from pathlib import Path
from typing import Any

import msgspec

from parley.contracts import acl
from parley.contracts import clusters
from parley.contracts import deployments
from parley.contracts import memory
from parley.contracts import models
from parley.contracts import personas
from parley.contracts import registry
from parley.contracts import runtime
from parley.contracts import strategies
from parley.contracts import subjects
from parley.contracts import tasks
from parley.contracts import tools
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorBody

__all__ = ["SCHEMA_DIR", "render", "write"]

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def _commands(
    service: str, reply: type[msgspec.Struct], *commands: tuple[str, type[msgspec.Struct]]
) -> dict[str, tuple[str, type[msgspec.Struct], type[msgspec.Struct]]]:
    """``<service>.<verb>`` → (its subject, its command type, ``reply``), for each command."""
    return {
        f"{service}.{verb}": (subjects.cmd(service, verb), command, reply)
        for verb, command in commands
    }


COMMANDS: dict[str, tuple[str, type[msgspec.Struct], type[msgspec.Struct]]] = {
    **_commands(
        "registry",
        registry.CommandReply,
        ("create_agent", registry.CreateAgent),
        ("update_agent", registry.UpdateAgent),
        ("agent_action", registry.AgentActionCommand),
        ("delete_agent", registry.DeleteAgent),
        ("create_persona", personas.CreatePersona),
        ("delete_persona", personas.DeletePersona),
    ),
    **_commands(
        "registry",
        clusters.ClusterReply,
        ("create_cluster", clusters.CreateCluster),
        ("update_cluster", clusters.UpdateCluster),
        ("delete_cluster", clusters.DeleteCluster),
        ("scale_cluster", clusters.ScaleCluster),
        ("resize_cluster", clusters.ResizeCluster),
        ("change_cluster_template", clusters.ChangeClusterTemplate),
    ),
    **_commands("registry", memory.MemoryReply, ("remember", memory.Remember)),
    **_commands("runtime", memory.MemorySearchReply, ("search_memory", memory.SearchMemory)),
    **_commands(acl.SERVICE, acl.MessageReply, ("send", acl.SendMessage)),
    **_commands(
        tasks.SERVICE,
        tasks.TaskReply,
        ("create_task", tasks.CreateTask),
        ("distribute_task", tasks.DistributeTask),
        ("cancel_task", tasks.CancelTask),
        ("start_run", tasks.StartRun),
    ),
    **_commands(
        deployments.SERVICE,
        deployments.DeploymentReply,
        ("create_deployment", deployments.CreateDeployment),
        ("deployment_action", deployments.DeploymentAction),
        ("list_deployments", deployments.ListDeployments),
    ),
    **_commands(
        "runtime",
        runtime.RuntimeReply,
        ("create_session", runtime.CreateSession),
        ("update_session", runtime.UpdateSession),
        ("set_session_tools", runtime.SetSessionTools),
        ("delete_session", runtime.DeleteSession),
        ("delete_sessions", runtime.DeleteSessions),
        ("upload_file", runtime.UploadFile),
        ("delete_file", runtime.DeleteFile),
        ("chat", runtime.Chat),
        ("cancel_turn", runtime.CancelTurn),
        ("trigger_execution", runtime.TriggerExecution),
        ("execution_input", runtime.ExecutionInput),
        ("cancel_execution", runtime.CancelExecution),
    ),
}
"""Command name → (subject, request type, reply type)."""

EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    **registry.EVENT_TYPES,
    **personas.EVENT_TYPES,
    **memory.EVENT_TYPES,
    **clusters.EVENT_TYPES,
    **runtime.EVENT_TYPES,
    **acl.EVENT_TYPES,
    **tasks.EVENT_TYPES,
    **tasks.RUN_EVENT_TYPES,
    **deployments.EVENT_TYPES,
}
"""Event type name → payload type, over every exported context."""

TYPES: dict[str, type[Any]] = {
    "event": Event,
    "new_event": NewEvent,
    "error": ErrorBody,
    "agent_spec": registry.AgentSpec,
    "agent_patch": registry.AgentPatch,
    "agent_view": registry.AgentView,
    "model_info": models.ModelInfo,
    "persona_spec": personas.PersonaSpec,
    "persona_view": personas.PersonaView,
    "memory_write": memory.MemoryWrite,
    "cluster_manifest": clusters.ClusterManifest,
    "cluster_view": clusters.ClusterView,
    "turn_delta": runtime.TurnDelta,
    "acl_message": acl.AclMessage,
    "task_spec": tasks.TaskSpec,
    "session_settings": runtime.SessionSettings,
    "tool_descriptor": tools.ToolDescriptor,
    "strategy_descriptor": strategies.StrategyDescriptor,
    **{f"tool_config.{name}": tp for name, tp in tools.TOOL_CONFIGS.items()},
    **{f"strategy_config.{name}": tp for name, tp in strategies.STRATEGY_CONFIGS.items()},
}


def _schema(tp: type[Any]) -> dict[str, Any]:
    return msgspec.json.schema(tp)


def _asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, (subject, request, _reply) in COMMANDS.items():
        service = name.split(".")[0]
        key = name.replace(".", "_")
        channels[key] = {
            "address": subject,
            "messages": {
                "request": {"payload": {"$ref": f"commands/{name}.json"}},
                "reply": {"payload": {"$ref": f"replies/{name}.json"}},
            },
            "description": (request.__doc__ or "").strip().splitlines()[0],
        }
        operations[key] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"{name}: NATS request/reply, queue group {subjects.queue(service)}",
            "reply": {"channel": {"$ref": f"#/channels/{key}"}},
        }
    for event_type in EVENT_TYPES:
        key = "event_" + event_type.replace(".", "_")
        channels[key] = {
            "address": subjects.EVENTS_ALL,
            "description": f"`{event_type}` events in the event store (JetStream PARLEY_EVENTS)",
            "messages": {"event": {"payload": {"$ref": f"events/{event_type}.json"}}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley",
            "version": "1",
            "description": "Commands (request/reply) and events (JetStream) of Parley. "
            "Send the JSON of a command to its subject; the reply is a CommandReply.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }


def render() -> dict[str, dict[str, Any]]:
    """Every exported document, by its path relative to the schema folder."""
    docs: dict[str, dict[str, Any]] = {}
    for name, (_, request, reply) in COMMANDS.items():
        docs[f"commands/{name}.json"] = _schema(request)
        docs[f"replies/{name}.json"] = _schema(reply)
    for event_type, payload in EVENT_TYPES.items():
        docs[f"events/{event_type}.json"] = _schema(payload)
    for name, tp in TYPES.items():
        docs[f"types/{name}.json"] = _schema(tp)
    docs["asyncapi.json"] = _asyncapi()
    return docs


def dumps(doc: dict[str, Any]) -> str:
    """A document as the checked-in file holds it."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every document under ``folder`` (removing stale ones); return the paths."""
    docs = render()
    for old in folder.rglob("*.json"):
        if str(old.relative_to(folder)) not in docs:
            old.unlink()
    written = []
    for rel, doc in docs.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(doc))
        written.append(path)
    return written
