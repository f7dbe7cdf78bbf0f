"""Agent versions and deployments through the real stack (nats-server, services, edge).

Every definition change of an agent is a numbered version readable back, with a field-level
diff; a deployment rolls a new definition out (immediately, or by canary stages), can be
promoted, paused, resumed or rolled back, and only one runs per agent at a time. The
deployment process can be killed mid-canary: another start resumes the rollout at its stage,
with exactly one event per transition.
"""

import uuid
from typing import Any

import httpx


async def _agent(http: httpx.AsyncClient, **spec: Any) -> str:
    body = {"name": f"dep-{uuid.uuid4().hex[:8]}", "system_prompt": "v1", **spec}
    created = await http.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


async def test_every_definition_change_is_a_numbered_version_with_a_diff(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client, labels={"team": "a"})
    for patch in (
        {"system_prompt": "v2"},
        {"params": {"temperature": 0.2}, "labels": {"team": "b"}},
    ):
        patched = await client.patch(f"/api/v1/agents/{agent_id}", json=patch)
        assert patched.status_code == 200, patched.text
    await client.post(f"/api/v1/agents/{agent_id}/start")  # not a definition change

    listed = await client.get(f"/api/v1/agents/{agent_id}/versions")
    assert listed.status_code == 200, listed.text
    found = listed.json()["data"]
    assert [v["version"] for v in found] == [1, 2, 3]
    assert found[1]["changed"] == ["system_prompt"]
    assert found[2]["changed"] == ["labels", "params"]

    second = await client.get(f"/api/v1/agents/{agent_id}/versions/2")
    assert second.status_code == 200
    assert second.json()["data"]["spec"]["system_prompt"] == "v2"
    assert second.json()["data"]["spec"]["labels"] == {"team": "a"}

    compared = await client.get(f"/api/v1/agents/{agent_id}/versions/1/diff/3")
    assert compared.status_code == 200, compared.text
    changes = {c["field"]: (c["before"], c["after"]) for c in compared.json()["data"]["changes"]}
    assert changes["system_prompt"] == ("v1", "v2")
    assert changes["labels.team"] == ("a", "b")
    assert changes["params.temperature"][1] == 0.2
    assert "name" not in changes

    missing = await client.get(f"/api/v1/agents/{agent_id}/versions/9")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    unknown = await client.get(f"/api/v1/agents/{uuid.uuid4()}/versions")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "AGENT_NOT_FOUND"
