"""The console's event log links each event to its trace in Jaeger when the edge is told
where Jaeger is (``PARLEY_JAEGER_URL``), on a stack of this module's own."""

import asyncio
import secrets

import httpx
import pytest
from console_support import LIVE_MS
from console_support import chromium
from console_support import new_page
from console_support import sign_in
from playwright.async_api import Locator
from playwright.async_api import Page
from playwright.async_api import Route
from playwright.async_api import expect
from tests_support import admin_key

from parley.devstack.stack import Stack

JAEGER = "http://127.0.0.1:16686"


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"PARLEY_AUTH": "on", "PARLEY_JAEGER_URL": JAEGER}


async def traced_create(http: httpx.AsyncClient, page: Page) -> tuple[str, Locator]:
    """Create an agent in a trace of its own; its id, and the event log's links to that
    trace (the name's claim is not traced: one link, the agent's ``agent.created``)."""
    trace_id = secrets.token_hex(16)
    created = await http.post(
        "/api/v1/agents",
        json={"name": f"traced-{secrets.token_hex(4)}"},
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert created.status_code == 201, created.text
    link = page.locator(f"#event-rows a[href='{JAEGER}/trace/{trace_id}']")
    return str(created.json()["data"]["id"]), link


async def test_an_event_of_a_traced_request_links_to_its_trace(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    async with chromium() as browser, new_page(browser) as page:
        await sign_in(page, own_stack, admin_key(own_stack), "default", "/events")
        agent_id, link = await traced_create(http, page)
        await expect(link).to_have_count(1, timeout=LIVE_MS)
        agent = page.locator(f"#event-rows a[href='/console/agents/{agent_id}']")
        await expect(agent.first).to_be_visible()  # events naming the agent link to it


async def test_a_feed_opened_again_while_the_first_waits_leaves_one_live_feed(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    """Signing in opens the event feed; picking the namespace opens it again. When the first
    open is still waiting for its ticket, it gives up: one socket, each event shown once."""
    tickets, first_waits = 0, asyncio.Event()

    async def slow_first_feed(route: Route) -> None:
        nonlocal tickets
        tickets += 1
        if tickets == 2:  # the first feed's ticket (the first one checks the key)
            first_waits.set()
            await asyncio.sleep(1.5)
        await route.continue_()

    async with chromium() as browser, new_page(browser) as page:
        await page.route("**/api/v1/ws-tickets", slow_first_feed)
        await page.goto(f"{own_stack.edge_url}/console/events")
        await page.fill("#key", admin_key(own_stack))
        await page.press("#key", "Enter")
        await asyncio.wait_for(first_waits.wait(), 10)
        await page.fill("#namespace", "default")
        await page.press("#namespace", "Enter")
        await expect(page.locator("#live")).to_have_text("live", timeout=LIVE_MS)
        await asyncio.sleep(2)  # the first open's ticket has come back by now
        _, link = await traced_create(http, page)
        await expect(link).to_have_count(1, timeout=LIVE_MS)
        await asyncio.sleep(0.5)  # a second feed would have shown it again by now
        assert await link.count() == 1
