"""The console: the fleet page's load time with 1,000 agents, and its live view under load.

- Page load over HTTP: the shell (``GET /console/``) and the view it loads
  (``GET /api/v1/console/fleet``), one after the other, as a browser does.
- Page load in headless Chromium (Debian's ``chromium``): navigation until every agent's
  row is on screen.
- Live view: agents paused and resumed at a steady rate (one ``agent.state_changed`` event
  each); the page (Chromium) notes when each row shows each new state. The lag is from the
  API's answer to the row on screen, on the same clock.

The browser figures need ``chromium`` (``PARLEY_CHROMIUM`` names another binary); without
one they are left out, and the line says so.
"""

import asyncio
import os
import shutil
import time
import uuid
from typing import Any

import aiohttp

from bench._stats import from_one_queue
from bench._stats import one_at_a_time
from bench._stats import post
from bench._stats import report

__all__ = ["fleet_page", "live_view"]

_WATCH = """() => {
  window.seen = [];
  new MutationObserver((changes) => {
    const now = Date.now();
    for (const change of changes) for (const node of change.addedNodes)
      if (node.dataset && node.dataset.agent)
        window.seen.push([node.dataset.agent, node.dataset.state, now]);
  }).observe(document.querySelector("#fleet-rows"), { childList: true });
}"""


def _chromium() -> str | None:
    return os.environ.get("PARLEY_CHROMIUM") or shutil.which("chromium")


async def _agents(http: aiohttp.ClientSession, count: int, start: bool) -> list[str]:
    run = uuid.uuid4().hex[:6]
    ids: list[str] = []

    async def create(i: int) -> None:
        made = await post(http, "/api/v1/agents", {"name": f"c{run}-{i}"})
        ids.append(made["data"]["id"])
        if start:
            await post(http, f"/api/v1/agents/{ids[-1]}/start")

    await from_one_queue(create, count, 32)
    return ids


async def fleet_page(edge_url: str, namespace: str, agents: int = 1_000, loads: int = 30) -> None:
    """The fleet page with ``agents`` agents: over HTTP, then in Chromium if there is one."""
    headers = {"X-Parley-Namespace": namespace}
    async with aiohttp.ClientSession(edge_url, headers=headers) as http:
        await _agents(http, agents, start=False)

        async def load(_: int) -> None:
            for path in ("/console/", "/api/v1/console/fleet"):
                async with http.get(path) as response:
                    await response.read()
                    assert response.status == 200, response.status

        latencies, seconds = await one_at_a_time(load, loads)
        report(f"console fleet page over HTTP, {agents:,} agents", loads, seconds, latencies)
    if (binary := _chromium()) is None:
        print("console fleet page in Chromium: left out (no chromium)", flush=True)
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        page = await _signed_in(browser, edge_url, namespace)
        samples = []
        for _ in range(max(3, loads // 3)):
            started = time.perf_counter()
            await page.reload()
            await page.wait_for_function(
                f"document.querySelectorAll('#fleet-rows tr').length >= {agents}"
            )
            samples.append(time.perf_counter() - started)
        report(
            f"console fleet page in Chromium, {agents:,} agents",
            len(samples),
            sum(samples),
            samples,
        )
        await browser.close()


async def _signed_in(browser: Any, edge_url: str, namespace: str) -> Any:
    # bypass_csp: the bench's probes are evaluated scripts, which the console's CSP forbids
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    await page.goto(f"{edge_url}/console/")
    await page.evaluate(
        "(ns) => { sessionStorage.setItem('parley.key', 'bench');"
        " sessionStorage.setItem('parley.namespace', ns); }",
        namespace,
    )
    await page.reload()
    await page.wait_for_function("document.querySelector('#live').textContent === 'live'")
    await page.wait_for_selector("#fleet-rows")
    return page


async def live_view(edge_url: str, namespace: str, rate: int = 100, seconds: float = 10.0) -> None:
    """Pause/resume agents at ``rate`` events/s for ``seconds``; the page's lag behind them."""
    binary = _chromium()
    if binary is None:
        print("console live view in Chromium: left out (no chromium)", flush=True)
        return
    from playwright.async_api import async_playwright

    headers = {"X-Parley-Namespace": namespace}
    async with aiohttp.ClientSession(edge_url, headers=headers) as http:
        ids = await _agents(http, 50, start=True)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=binary, args=["--no-sandbox"]
            )
            page = await _signed_in(browser, edge_url, namespace)
            await page.wait_for_function(
                f"document.querySelectorAll('#fleet-rows tr').length >= {len(ids)}"
            )
            await page.evaluate(_WATCH)
            sent = await _steady(http, ids, rate, seconds)
            last = {agent: state for agent, state, _ in sent}
            await page.wait_for_function(
                "(want) => Object.entries(want).every(([a, s]) =>"
                " document.getElementById('agent-' + a)?.dataset.state === s)",
                arg=last,
                timeout=30_000,
            )
            seen: list[list[Any]] = await page.evaluate("window.seen")
            await browser.close()
    lags = _lags(sent, seen)
    report(
        f"console live view at {rate} events/s: API call → row on screen",
        len(sent),
        seconds,
        lags,
    )
    print(f"  {len(lags):,} of {len(sent):,} states shown (the rest coalesced by a newer one)")


async def _steady(
    http: aiohttp.ClientSession, ids: list[str], rate: int, seconds: float
) -> list[tuple[str, str, float]]:
    """Pause and resume ``ids`` in turn at ``rate`` per second: (agent, state, ms answered)."""
    count = int(rate * seconds)
    sent: list[tuple[str, str, float]] = []
    answered: list[float] = []
    paused: set[str] = set()
    begin = time.monotonic()

    async def one(i: int) -> None:
        agent = ids[i % len(ids)]
        action, state = ("resume", "running") if agent in paused else ("pause", "paused")
        paused.symmetric_difference_update({agent})
        await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))  # the pace
        asked = time.time() * 1e3
        await post(http, f"/api/v1/agents/{agent}/{action}")
        answered.append(time.time() - asked / 1e3)
        sent.append((agent, state, asked))

    # each agent's actions in order: one chain per agent, all agents side by side
    chains = [[i for i in range(count) if i % len(ids) == k] for k in range(len(ids))]

    async def chain(numbers: list[int]) -> None:
        for i in numbers:
            await one(i)

    await asyncio.gather(*(chain(numbers) for numbers in chains))
    report("  (the API calls themselves: answered)", count, seconds, answered)
    return sent


def _lags(sent: list[tuple[str, str, float]], seen: list[list[Any]]) -> list[float]:
    """Seconds from each change asked to the first time its row showed that state after,
    before the agent's change after next (which asks for the same state again)."""
    shown: dict[str, list[tuple[float, str]]] = {}
    for agent, state, at in seen:
        shown.setdefault(agent, []).append((at, state))
    asked: dict[str, list[tuple[str, float]]] = {}
    for agent, state, at in sent:
        asked.setdefault(agent, []).append((state, at))
    lags = []
    for agent, changes in asked.items():
        for j, (state, at) in enumerate(changes):
            until = changes[j + 2][1] if j + 2 < len(changes) else float("inf")
            rows = shown.get(agent, [])
            match = next((t for t, s in rows if s == state and at <= t < until), None)
            if match is not None:
                lags.append((match - at) / 1e3)
    return lags
