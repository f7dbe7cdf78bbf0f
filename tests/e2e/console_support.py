"""What the console tests share: keys, a Contract Net round, a canary, the browser.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``PARLEY_CHROMIUM``
names another binary) driven by Playwright; nothing is downloaded at test time.
"""

import os
import shutil
from typing import Any

import httpx
from e2e_support import new_agent

__all__ = [
    "CANARY",
    "chromium_path",
    "contract_net_round",
    "contract_net_task",
    "distribute",
    "make_key",
    "start_canary",
]

CANARY = [{"percentage": 10, "duration_s": 600}, {"percentage": 100}]
"""A canary that stays at 10% until it is steered by hand."""


def chromium_path() -> str:
    """The Chromium binary the browser tests drive.

    Raises:
        AssertionError: none installed (the tests fail rather than skip: install it).
    """
    found = os.environ.get("PARLEY_CHROMIUM") or shutil.which("chromium")
    assert found, "no chromium: `apt-get install -y chromium` (or set PARLEY_CHROMIUM)"
    return found


async def make_key(admin: httpx.AsyncClient, role: str, namespace: str) -> str:
    """The secret of a new key with ``role`` in ``namespace`` only."""
    response = await admin.post(
        "/api/v1/keys",
        json={"name": f"console {role}", "roles": [role], "namespaces": [namespace]},
        headers={"X-Parley-Namespace": namespace},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["secret"])


def _bidding(cost: float, time_s: float, confidence: float) -> dict[str, Any]:
    return {"bidding": {"base_cost": cost, "default_time_s": time_s, "confidence": confidence}}


async def contract_net_task(api: httpx.AsyncClient) -> tuple[str, str, str]:
    """A task for a cheap and a dear bidder, not yet distributed: (task id, cheap, dear)."""
    cheap = await new_agent(api, "cheap", **_bidding(1, 1, 0.9))
    dear = await new_agent(api, "dear", **_bidding(9, 5, 0.5))
    created = await api.post(
        "/api/v1/tasks",
        json={"name": "summarise", "description": "say hello", "participants": [cheap, dear]},
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]["task_id"], cheap, dear


async def distribute(api: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The round of ``task_id`` under ``lowest_cost``, awarded: the task."""
    distributed = await api.post(
        f"/api/v1/tasks/{task_id}/distribute",
        json={"strategy": "lowest_cost", "max_wait_seconds": 10, "wait": True},
    )
    assert distributed.status_code == 200, distributed.text
    task: dict[str, Any] = distributed.json()["data"]
    return task


async def contract_net_round(api: httpx.AsyncClient) -> tuple[dict[str, Any], str, str]:
    """A round between a cheap and a dear bidder, awarded: (the task, winner, loser)."""
    task_id, cheap, dear = await contract_net_task(api)
    task = await distribute(api, task_id)
    assert task["assigned_to"] == cheap, task
    return task, cheap, dear


async def start_canary(api: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    """A canary of a new agent's v2, rolling out at 10%: (the deployment, its agent)."""
    agent_id = await new_agent(api, "canary", actions=(), system_prompt="v1")
    name = (await api.get(f"/api/v1/agents/{agent_id}")).json()["data"]["spec"]["name"]
    started = await api.post(
        "/api/v1/deployments",
        json={
            "agent_id": agent_id,
            "version_label": "v2",
            "spec": {"name": name, "system_prompt": "v2"},
            "stages": CANARY,
        },
    )
    assert started.status_code == 202, started.text
    return started.json()["data"], agent_id
