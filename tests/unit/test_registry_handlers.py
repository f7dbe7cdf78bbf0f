"""The registry's command table against the in-memory event store: its rules, no processes.

Every command goes through ``parley.registry.app.ROUTES`` as the service serves it: the body
is decoded into the route's command type, the handler runs, and an error becomes the reply
the service would send (``reply_for_error``).
"""

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from _registry import NS
from _registry import send

from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import agent_stream
from parley.contracts.registry import name_stream
from parley.eventstore import NO_STREAM
from parley.eventstore.memory import MemoryEventStore
from parley.registry.app import ROUTES
from parley.registry.handlers import Registry
from parley.registry.handlers import reply_for_error


async def create(registry: Registry, name: str, **spec: Any) -> str:
    reply = await send(registry, "create_agent", spec={"name": name, **spec})
    assert reply.ok, reply.error
    agent_id: str = reply.agent_id
    return agent_id


async def act(registry: Registry, agent_id: str, action: str, **body: Any) -> Any:
    return await send(registry, "agent_action", agent_id=agent_id, action=action, **body)


def refused(reply: Any, code: ErrorCode) -> None:
    assert not reply.ok and reply.error is not None, reply
    assert reply.error.code == code, reply.error


# --- agents ----------------------------------------------------------------------------------


async def test_a_created_agent_is_stored_as_its_first_event_at_version_1(
    registry: Registry, store: MemoryEventStore
) -> None:
    reply = await send(registry, "create_agent", spec={"name": "helper"})
    assert reply.ok and reply.version == 1 and reply.agent_id
    [event] = await store.read(agent_stream(reply.agent_id))
    assert event.type == "agent.created" and event.namespace == NS
    assert event.source == "/parley/registry" and reply.position == event.position


async def test_creating_again_with_the_same_id_and_definition_succeeds_once(
    registry: Registry, store: MemoryEventStore
) -> None:
    agent_id = await create(registry, "helper")
    again = await send(registry, "create_agent", agent_id=agent_id, spec={"name": "helper"})
    assert again.ok and again.version == 1
    other = await send(registry, "create_agent", agent_id=agent_id, spec={"name": "other"})
    refused(other, ErrorCode.AGENT_ALREADY_EXISTS)
    assert len(await store.read(agent_stream(agent_id))) == 1


async def test_a_bad_definition_is_refused_before_anything_is_stored(
    registry: Registry, store: MemoryEventStore
) -> None:
    reply = await send(
        registry, "create_agent", spec={"name": "x", "trigger": {"type": "periodic"}}
    )
    refused(reply, ErrorCode.VALIDATION_ERROR)
    assert await store.last_position() == 0


async def test_the_lifecycle_moves_one_version_per_transition_and_refuses_illegal_ones(
    registry: Registry,
) -> None:
    agent_id = await create(registry, "worker")
    for version, action in enumerate(["start", "pause", "resume", "stop"], start=2):
        reply = await act(registry, agent_id, action)
        assert reply.ok and reply.version == version, reply
    refused(await act(registry, agent_id, "resume"), ErrorCode.INVALID_STATE_TRANSITION)


async def test_a_stale_if_match_is_a_conflict_and_a_current_one_succeeds(
    registry: Registry,
) -> None:
    agent_id = await create(registry, "careful")
    assert (await act(registry, agent_id, "start")).ok
    refused(
        await act(registry, agent_id, "pause", expected_version=1), ErrorCode.CONCURRENCY_CONFLICT
    )
    assert (await act(registry, agent_id, "pause", expected_version=2)).version == 3
    patch = {"description": "x"}
    stale = await send(registry, "update_agent", agent_id=agent_id, patch=patch, expected_version=2)
    refused(stale, ErrorCode.CONCURRENCY_CONFLICT)


async def test_another_registry_moving_the_agent_on_does_not_break_a_cached_copy(
    registry: Registry, store: MemoryEventStore
) -> None:
    agent_id = await create(registry, "shared")
    other = Registry(store)  # a second instance of the service, on the same store
    assert (await act(other, agent_id, "start")).version == 2
    paused = await act(registry, agent_id, "pause")  # this one still caches version 1
    assert paused.ok and paused.version == 3


async def test_an_unknown_agent_and_another_namespace_s_agent_are_not_found(
    registry: Registry,
) -> None:
    agent_id = await create(registry, "mine")
    refused(await act(registry, "nobody", "start"), ErrorCode.AGENT_NOT_FOUND)
    command_type, handler = ROUTES["agent_action"]
    command = msgspec.convert(
        {"namespace": "elsewhere", "agent_id": agent_id, "action": "start"}, command_type
    )
    with pytest.raises(Exception) as info:
        await handler(registry, command)
    refused(reply_for_error(info.value), ErrorCode.AGENT_NOT_FOUND)


# --- names -----------------------------------------------------------------------------------


async def test_a_name_held_by_a_live_agent_is_taken(registry: Registry) -> None:
    first = await create(registry, "unique")
    reply = await send(registry, "create_agent", spec={"name": "unique"})
    refused(reply, ErrorCode.AGENT_ALREADY_EXISTS)
    assert reply.error.details["agent_id"] == first


async def test_a_name_another_registry_gave_a_live_agent_is_taken(
    registry: Registry, store: MemoryEventStore
) -> None:
    first = await create(registry, "shared")
    reply = await send(Registry(store), "create_agent", spec={"name": "shared"})
    refused(reply, ErrorCode.AGENT_ALREADY_EXISTS)
    assert reply.error.details["agent_id"] == first


async def test_a_claim_another_registry_left_behind_long_ago_is_taken_over(
    registry: Registry, store: MemoryEventStore
) -> None:
    # a create that died between its claim and its agent, a minute ago
    left = NewEvent(
        type="agent_name.claimed",
        subject="gone",
        data={"name": "orphaned", "agent_id": "01a21f00-0000-7000-8000-000000000000"},
        namespace=NS,
        time=datetime.now(UTC) - timedelta(minutes=1),
    )
    await store.append(name_stream(NS, "orphaned"), [left], NO_STREAM)
    agent_id = await create(registry, "orphaned")
    claims = await store.read(name_stream(NS, "orphaned"))
    assert [e.data["agent_id"] for e in claims] == [left.data["agent_id"], agent_id]


async def test_a_new_agent_with_a_new_name_is_created_without_reading_a_stream(
    store: MemoryEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    read = store.read

    async def counted(stream: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(stream)
        return await read(stream, *args, **kwargs)

    monkeypatch.setattr(store, "read", counted)
    agent_id = await create(Registry(store), "fresh")
    assert reads == []  # two appends (the name's claim, the agent), each at a new stream
    assert [e.type for e in await read(agent_stream(agent_id))] == ["agent.created"]


async def test_deleting_an_agent_frees_its_name(registry: Registry) -> None:
    agent_id = await create(registry, "reused")
    deleted = await send(registry, "delete_agent", agent_id=agent_id)
    assert deleted.ok and deleted.version == 2
    refused(await act(registry, agent_id, "start"), ErrorCode.AGENT_NOT_FOUND)
    assert await create(registry, "reused") != agent_id


async def test_a_rename_takes_the_new_name_and_frees_the_old_one(registry: Registry) -> None:
    agent_id = await create(registry, "before")
    await create(registry, "taken")
    renamed = await send(registry, "update_agent", agent_id=agent_id, patch={"name": "after"})
    assert renamed.ok and renamed.version == 2
    clash = await send(registry, "update_agent", agent_id=agent_id, patch={"name": "taken"})
    refused(clash, ErrorCode.AGENT_ALREADY_EXISTS)
    refused(
        await send(registry, "create_agent", spec={"name": "after"}), ErrorCode.AGENT_ALREADY_EXISTS
    )
    assert await create(registry, "before")


# --- personas --------------------------------------------------------------------------------


async def test_an_agent_may_name_only_a_persona_that_exists(registry: Registry) -> None:
    refused(
        await send(registry, "create_agent", spec={"name": "a", "persona": "pirate-x"}),
        ErrorCode.VALIDATION_ERROR,
    )
    persona = {"name": "pirate-x", "content": "Talk like a pirate."}
    assert (await send(registry, "create_persona", spec=persona)).ok
    refused(await send(registry, "create_persona", spec=persona), ErrorCode.PERSONA_EXISTS)
    assert await create(registry, "a", persona="pirate-x")
    deleted = await send(registry, "delete_persona", name="pirate-x", expected_version=1)
    assert deleted.ok and deleted.version == 2
    refused(await send(registry, "delete_persona", name="pirate-x"), ErrorCode.PERSONA_NOT_FOUND)


# --- clusters --------------------------------------------------------------------------------


def manifest(name: str, *agents: str) -> dict[str, Any]:
    return {
        "apiVersion": "parley.dev/v1",
        "kind": "AgentCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"agents": [{"name": agent} for agent in agents]},
    }


async def test_a_cluster_creates_and_starts_its_agents_and_its_delete_frees_their_names(
    registry: Registry,
) -> None:
    created = await send(registry, "create_cluster", manifest=manifest("team", "lead", "aide"))
    assert created.ok and created.version == 1 and len(created.agent_ids) == 2
    for agent_id in created.agent_ids:
        agent = await registry.live_agent(agent_id)
        assert agent is not None and agent.state == "running"
    paused = await send(registry, "update_cluster", name="team", action="pause")
    assert paused.ok and paused.version == 2
    deleted = await send(registry, "delete_cluster", name="team")
    assert deleted.ok and deleted.version == 3
    assert [await registry.live_agent(a) for a in created.agent_ids] == [None, None]
    assert await create(registry, "lead")


async def test_a_cluster_whose_agent_name_is_taken_creates_nothing(
    registry: Registry, store: MemoryEventStore
) -> None:
    await create(registry, "aide")
    before = await store.last_position()
    reply = await send(registry, "create_cluster", manifest=manifest("team", "lead", "aide"))
    refused(reply, ErrorCode.AGENT_ALREADY_EXISTS)
    assert reply.error.details["errors"][0]["field"] == "spec.agents[1].name"
    assert await store.last_position() == before
