"""The event log is the audit log: every recorded event names the principal that acted,
carried to the services as the ``Parley-Actor`` header of each command, and on from one
service to the next."""

import json
import uuid

import nats
from tests_support import eventually
from tests_support import stream_events

from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import ACTOR_HEADER
from parley.contracts.envelope import Event
from parley.contracts.registry import agent_stream
from parley.eventstore import open_store


async def _command(
    nats_url: str, verb: str, body: dict, actor: str | None, service: str = "registry"
) -> dict:
    nc = await nats.connect(nats_url)
    try:
        message = await nc.request(
            f"parley.cmd.{service}.{verb}",
            json.dumps(body).encode(),
            timeout=10,
            headers={ACTOR_HEADER: actor} if actor else None,
        )
    finally:
        await nc.close()
    reply = json.loads(message.data)
    assert reply["ok"] is True, reply
    return reply


async def _started_agent(nats_url: str, prefix: str, actor: str) -> dict:
    """The reply to ``create_agent`` of an agent that ``actor`` created and started."""
    spec = {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"}
    created = await _command(nats_url, "create_agent", {"spec": spec}, actor)
    start = {"agent_id": created["agent_id"], "action": "start"}
    await _command(nats_url, "agent_action", start, actor)
    return created


async def _seeing(
    nats_url: str, created: dict, service: str, verb: str, body: dict, actor: str
) -> dict:
    """``verb`` of ``service`` for ``actor``, served once the service has seen the agent of
    ``created`` (its ``min_position``)."""
    body = {**body, "min_position": created["position"]}
    return await _command(nats_url, verb, body, actor, service=service)


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


async def test_a_message_sent_over_nats_names_its_principal(stack) -> None:
    # The messaging service serves its commands on raw nats-py routes.
    conversation = f"audit-{uuid.uuid4().hex[:10]}"
    message = {"performative": "inform", "receivers": ["user:bob"], "content": "hello"}
    await _command(
        stack.nats_url,
        "send",
        {"message": {**message, "conversation_id": conversation}},
        "key:test-actor",
        service="messaging",
    )
    events = await stream_events(stack, conversation_stream("default", conversation))
    assert [(e.type, e.actor) for e in events] == [("message.sent", "key:test-actor")]


async def test_a_chain_of_commands_across_services_names_the_principal_who_started_it(
    stack,
) -> None:
    # The tasks service sends its cfp through the messaging service: a second command.
    actor = "jwt:https://idp.example/#carol"
    created = await _started_agent(stack.nats_url, "c", actor)
    agent_id = created["agent_id"]
    spec = {"name": "audited", "participants": [agent_id], "timeout_seconds": 30}
    task = await _command(stack.nats_url, "create_task", {"spec": spec}, actor, service="tasks")
    task_id = task["task_id"]
    await _seeing(stack.nats_url, created, "tasks", "distribute_task", {"task_id": task_id}, actor)

    async def cfp_sent() -> list[Event]:
        return await stream_events(stack, conversation_stream("default", task_id))

    sent = await eventually(cfp_sent, within=10)  # the cfp may be sent after the reply
    assert sent[0].type == "message.sent"
    assert sent[0].data["message"]["performative"] == "cfp"
    assert sent[0].actor == actor


async def test_an_agent_answering_a_message_acts_for_the_principal_who_sent_it(stack) -> None:
    # messaging → inbox work queue → runtime turn → reply through messaging: three hops.
    actor = "key:dave"
    created = await _started_agent(stack.nats_url, "a", actor)
    agent_id = created["agent_id"]
    conversation = f"audit-{uuid.uuid4().hex[:10]}"
    message = {
        "performative": "request",
        "receivers": [agent_id],
        "content": "hello",
        "conversation_id": conversation,
    }
    await _seeing(stack.nats_url, created, "messaging", "send", {"message": message}, actor)

    def replies(events: list[Event]) -> list[Event]:
        sent = [e for e in events if e.type == "message.sent"]
        return [e for e in sent if e.data["message"]["sender"] == agent_id]

    async def answered() -> list[Event] | None:
        events = await stream_events(stack, conversation_stream("default", conversation))
        return events if replies(events) else None

    events = await eventually(answered, within=15)
    assert replies(events)[0].data["message"]["performative"] == "inform"
    assert {e.actor for e in events} == {actor}
