"""The console in headless Chromium (Debian's package, driven by Playwright): sign in, the
live fleet, actions from the page, the Contract Net and canary views, the namespace walls,
and a screenshot of every page, checked non-empty (``PARLEY_SCREENSHOTS=docs/console``
saves them for the docs)."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from console_support import LIVE_MS
from console_support import chromium
from console_support import contract_net_task
from console_support import distribute
from console_support import make_key
from console_support import new_page
from console_support import sign_in
from console_support import start_canary
from e2e_support import new_agent
from playwright.async_api import Browser
from playwright.async_api import Page
from playwright.async_api import expect
from tests_support import admin_key

from parley.devstack.stack import Stack


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser) as opened:
        yield opened


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``PARLEY_SCREENSHOTS`` (``docs/console`` refreshes the docs'),
    else a temp dir, so a test run leaves the work tree as it was."""
    chosen = os.environ.get("PARLEY_SCREENSHOTS")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    Path(chosen).mkdir(parents=True, exist_ok=True)
    return Path(chosen)


async def shoot(page: Page, shots: Path, name: str) -> None:
    image = await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert len(image) > 10_000, f"{name}: an empty render"
    assert (await page.inner_text("#view")).strip()


async def test_sign_in_keeps_the_key_out_of_urls_and_a_bad_key_is_told(
    page: Page, stack: Stack, namespace: str
) -> None:
    await page.goto(f"{stack.edge_url}/console/")
    await page.fill("#key", "pk_nope_" + "A" * 43)
    await page.press("#key", "Enter")
    await expect(page.locator("#sign-in-error")).to_contain_text("UNAUTHORIZED")
    await sign_in(page, stack, admin_key(stack), namespace)
    assert admin_key(stack) not in page.url
    assert await page.evaluate("localStorage.length") == 0


async def test_an_agent_made_through_the_api_appears_live_and_starts_from_the_page(
    page: Page, stack: Stack, api: httpx.AsyncClient, namespace: str, shots: Path
) -> None:
    await sign_in(page, stack, admin_key(stack), namespace)
    await expect(page.locator("#agent-count")).to_have_text("0")
    agent_id = await new_agent(api, "live", actions=())
    row = page.locator(f"#agent-{agent_id}")
    await expect(row).to_have_attribute("data-state", "created", timeout=LIVE_MS)
    await expect(page.locator("#agent-count")).to_have_text("1")
    await row.locator("button[data-action=start]").focus()
    await page.keyboard.press("Enter")  # by keyboard: the focus stays on the row's actions
    await expect(row).to_have_attribute("data-state", "running", timeout=LIVE_MS)
    await expect(row.locator("button[data-action=pause]")).to_be_focused()
    read = await api.get(f"/api/v1/agents/{agent_id}")
    assert read.json()["data"]["state"] == "running"
    await shoot(page, shots, "fleet")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shoot(page, shots, "fleet-phone")


async def test_another_namespaces_agents_never_appear(
    page: Page, stack: Stack, client: httpx.AsyncClient, namespace: str
) -> None:
    other = f"{namespace}-b"
    key = await make_key(client, "operator", namespace)
    await sign_in(page, stack, key, namespace)
    theirs = await new_agent(client, "theirs", headers={"X-Parley-Namespace": other})
    mine = await new_agent(client, "mine", headers={"X-Parley-Namespace": namespace})
    await expect(page.locator(f"#agent-{mine}")).to_be_visible(timeout=LIVE_MS)
    assert await page.locator(f"#agent-{theirs}").count() == 0  # recorded before `mine`
    await page.fill("#namespace", other)
    await page.press("#namespace", "Enter")
    await expect(page.locator("#view .error")).to_contain_text("NOT_FOUND", timeout=LIVE_MS)
    assert theirs not in await page.content()


async def test_the_contract_net_round_conversation_and_agent_pages_render(
    page: Page, stack: Stack, api: httpx.AsyncClient, namespace: str, shots: Path
) -> None:
    task_id, winner, _ = await contract_net_task(api)
    await sign_in(page, stack, admin_key(stack), namespace, f"/tasks/{task_id}")
    await expect(page.locator("#task-status")).to_have_text("created")
    await distribute(api, task_id)  # the page follows the round live: bids, then the award
    award = page.locator(f"#award a[href='/console/agents/{winner}']")
    await expect(award).to_contain_text("cheap-", timeout=LIVE_MS)
    await expect(page.locator("table.bids tbody tr")).to_have_count(2)
    await shoot(page, shots, "contract-net")
    await page.click(f"#award a[href='/console/agents/{winner}']")
    await expect(page.locator("#live")).to_have_text("live", timeout=LIVE_MS)
    await expect(page.locator("section.charts svg")).to_have_count(4)
    await shoot(page, shots, "agent")
    await page.locator("a[href^='/console/conversations/']").first.click()
    await expect(page.locator("svg.sequence")).to_be_visible(timeout=LIVE_MS)
    await expect(page.locator("svg.sequence .msg.cfp")).not_to_have_count(0)
    await shoot(page, shots, "conversation")


async def test_a_canary_renders_live_until_it_is_rolled_back(
    page: Page, stack: Stack, api: httpx.AsyncClient, namespace: str, shots: Path
) -> None:
    deployment, _ = await start_canary(api)
    await sign_in(page, stack, admin_key(stack), namespace, f"/deployments/{deployment['id']}")
    await expect(page.locator("#split")).to_have_text("10%")
    await expect(page.locator("#deployment-status")).to_have_text("rolling_out")
    rolled = await api.post(
        f"/api/v1/deployments/{deployment['id']}/rollback", json={"reason": "error rate 9%"}
    )
    assert rolled.status_code == 200, rolled.text
    await expect(page.locator("#deployment-status")).to_have_text("rolled_back", timeout=LIVE_MS)
    await expect(page.locator("#reason")).to_contain_text("error rate 9%")
    await shoot(page, shots, "deployment")


async def test_the_event_log_filters_and_jumps_to_a_position(
    page: Page, stack: Stack, api: httpx.AsyncClient, namespace: str, shots: Path
) -> None:
    agent_id = await new_agent(api, "logged")
    await sign_in(page, stack, admin_key(stack), namespace, "/events")
    await page.fill("input[name=types]", "agent.*")
    await page.fill("input[name=agent_ids]", agent_id)
    await page.press("input[name=types]", "Enter")
    rows = page.locator("#event-rows tr")
    await expect(rows).to_have_count(2, timeout=LIVE_MS)  # created, state_changed
    first = int(await rows.first.locator("td").first.inner_text())
    await page.fill("input[name=from_position]", str(first))
    await page.press("input[name=from_position]", "Enter")
    await expect(rows).to_have_count(1, timeout=LIVE_MS)
    await expect(rows.first.locator("td").nth(2)).to_have_text("agent.state_changed")
    await shoot(page, shots, "events")
