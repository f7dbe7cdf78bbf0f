"""What the console tests share: keys, a Contract Net round, a canary, the browser.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``PARLEY_CHROMIUM``
names another binary) driven by Playwright; nothing is downloaded at test time.
"""

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
from e2e_support import new_agent
from playwright.async_api import Browser
from playwright.async_api import Page
from playwright.async_api import async_playwright
from playwright.async_api import expect

from parley.devstack.stack import Stack

__all__ = [
    "CANARY",
    "LIVE_MS",
    "chromium",
    "chromium_path",
    "contract_net_round",
    "contract_net_task",
    "distribute",
    "make_key",
    "new_page",
    "sign_in",
    "start_canary",
]

CANARY = [{"percentage": 10, "duration_s": 600}, {"percentage": 100}]
"""A canary that stays at 10% until it is steered by hand."""
LIVE_MS = 5_000
"""How long a page may take to show a change (the issue's budget is a second; under a
loaded test machine the assertion allows more, and `bench` measures the real figure)."""


def chromium_path() -> str:
    """The Chromium binary the browser tests drive.

    Raises:
        AssertionError: none installed (the tests fail rather than skip: install it).
    """
    found = os.environ.get("PARLEY_CHROMIUM") or shutil.which("chromium")
    assert found, "no chromium: `apt-get install -y chromium` (or set PARLEY_CHROMIUM)"
    return found


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium (:func:`chromium_path`), closed after the block."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def new_page(browser: Browser) -> AsyncIterator[Page]:
    """A page of its own (its own session storage) at 1280×800."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    yield await context.new_page()
    await context.close()


async def sign_in(page: Page, stack: Stack, key: str, namespace: str, path: str = "/") -> None:
    """Open ``/console{path}``, sign in with ``key``, pick ``namespace``; wait until live."""
    await page.goto(f"{stack.edge_url}/console{path}")
    await page.fill("#key", key)
    await page.press("#key", "Enter")
    await page.fill("#namespace", namespace)
    await page.press("#namespace", "Enter")
    await expect(page.locator("#live")).to_have_text("live", timeout=LIVE_MS)


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
