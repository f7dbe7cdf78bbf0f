"""The event log is the audit log: every recorded event names the principal that acted,
carried to the services as the ``Parley-Actor`` header of each command."""

import json
import uuid

import nats

from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.registry import agent_stream
from parley.eventstore import open_store


async def _command(nats_url: str, verb: str, body: dict, actor: str | None) -> dict:
    nc = await nats.connect(nats_url)
    try:
        message = await nc.request(
            f"parley.cmd.registry.{verb}",
            json.dumps(body).encode(),
            timeout=10,
            headers={ACTOR_HEADER: actor} if actor else None,
        )
    finally:
        await nc.close()
    reply = json.loads(message.data)
    assert reply["ok"] is True, reply
    return reply


async def test_each_recorded_event_names_the_principal_of_its_command(stack) -> None:
    name = f"audited-{uuid.uuid4().hex[:8]}"
    created = await _command(
        stack.nats_url, "create_agent", {"spec": {"name": name}}, "key:test-actor"
    )
    agent_id = created["agent_id"]
    await _command(
        stack.nats_url,
        "update_agent",
        {"agent_id": agent_id, "patch": {"description": "changed"}},
        "jwt:someone-else",
    )
    await _command(stack.nats_url, "delete_agent", {"agent_id": agent_id}, None)

    store = await open_store(backend="jetstream", nats_url=stack.nats_url)
    try:
        events = await store.read(agent_stream(agent_id))
    finally:
        await store.close()
    assert [(e.type, e.actor) for e in events] == [
        ("agent.created", "key:test-actor"),
        ("agent.updated", "jwt:someone-else"),
        ("agent.deleted", None),
    ]
