"""The agents projection: a rebuild from position 0 equals the live view."""

import uuid

import msgspec

from parley.edge.projections.agents import AgentsProjection
from parley.eventstore.factory import open_store


async def _all_agents(client) -> list[dict]:
    agents, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/agents", params=params)).json()
        agents += page["data"]
        if not page["pagination"]["has_more"]:
            return agents
        cursor = page["pagination"]["next_cursor"]


async def test_a_projection_rebuilt_from_position_zero_equals_the_live_one(stack, client) -> None:
    run = uuid.uuid4().hex[:6]
    for i in range(12):
        agent = (await client.post("/api/v1/agents", json={"name": f"rb-{run}-{i}"})).json()
        agent_id = agent["data"]["id"]
        for action in [["start"], ["start", "pause"], ["stop"], []][i % 4]:
            assert (await client.post(f"/api/v1/agents/{agent_id}/{action}")).status_code == 200
        if i % 3 == 0:
            patched = await client.patch(
                f"/api/v1/agents/{agent_id}", json={"description": "changed", "labels": {"k": "v"}}
            )
            assert patched.status_code == 200
        if i % 5 == 0:
            assert (await client.delete(f"/api/v1/agents/{agent_id}")).status_code == 200
    live = await _all_agents(client)

    store = await open_store(nats_url=stack.nats_url)
    rebuilt = AgentsProjection(store)
    try:
        await rebuilt.start()
        assert await rebuilt.wait_for(rebuilt.target_position, within=10)
        assert rebuilt.ready
        views = msgspec.to_builtins(list(rebuilt.agents("default")))
    finally:
        await rebuilt.stop()
        await store.close()

    by_id = lambda agents: {a["id"]: a for a in agents}  # noqa: E731
    assert by_id(views) == by_id(live)
    assert len(live) >= 12 - 3  # the deleted ones are gone from both
