"""What the end-to-end tests share beyond ``tests_support``: agents made through the edge, the
answer and error envelopes, the events a namespace appended, the store's subscriptions, a
module's own stack started and stopped (:func:`started`), and a loopback "world" for the
``http_request`` tool (importable: ``tests/e2e`` is on sys.path).
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from typing import TypeVar

import httpx
import nats
from aiohttp import web
from loopback import Loopback

from parley.devstack.stack import Stack
from parley.eventstore import EventStore
from parley.eventstore.factory import open_store

__all__ = [
    "World",
    "act",
    "all_agents",
    "body_of",
    "call",
    "consumer_count",
    "consumers_back_to",
    "deployment_in",
    "deployment_view",
    "error_of",
    "events_in",
    "last_position",
    "new_agent",
    "started",
    "web_tools",
]

S = TypeVar("S", bound=Stack)


@contextlib.asynccontextmanager
async def started(stack: S) -> AsyncIterator[S]:
    """``stack`` started (a loaded machine starts slowly: 90 s), and stopped after."""
    await asyncio.to_thread(stack.start, 90.0)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def all_agents(http: httpx.AsyncClient, *, limit: int = 200) -> dict[str, Any]:
    """Every agent ``GET /api/v1/agents`` lists, by id, following its pages of ``limit``."""
    agents: dict[str, Any] = {}
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/agents", params=params)).json()
        agents.update({a["id"]: a for a in page["data"]})
        if not page["pagination"]["has_more"]:
            return agents
        cursor = page["pagination"]["next_cursor"]


async def new_agent(
    http: httpx.AsyncClient,
    prefix: str,
    *,
    actions: Iterable[str] = ("start",),
    headers: dict[str, str] | None = None,
    **spec: Any,
) -> str:
    """An agent named ``<prefix>-<8 hex>`` with ``spec``, created (201), then taken through
    ``actions`` in order (each 200; ``start`` unless told otherwise); its id."""
    body = {"name": f"{prefix}-{uuid.uuid4().hex[:8]}", **spec}
    created = await http.post("/api/v1/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["data"]["id"]
    for action in actions:
        await act(http, agent_id, action, headers=headers)
    return agent_id


async def act(
    http: httpx.AsyncClient, agent_id: str, action: str, headers: dict[str, str] | None = None
) -> None:
    """``POST /agents/{id}/{action}`` (start, pause, resume, stop), answered 200."""
    response = await http.post(f"/api/v1/agents/{agent_id}/{action}", headers=headers)
    assert response.status_code == 200, response.text


def web_tools() -> dict[str, Any]:
    """An agent spec whose ``http_request`` tool may reach loopback (the :class:`World`)."""
    return {"tools": [{"name": "http_request", "config": {"allowed_hosts": ["127.0.0.1"]}}]}


def call(tool: str, **arguments: Any) -> str:
    """A message the offline provider turns into a call of ``tool`` with ``arguments``."""
    return f"call {tool}({json.dumps(arguments)})"


def body_of(response: httpx.Response, status: int = 200) -> Any:
    """The decoded body of an answer asserted to carry ``status``."""
    assert response.status_code == status, response.text
    return response.json()


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The ``error`` of an envelope answer, asserted to carry ``status`` and ``code``, a
    message and a request id."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["request_id"], error
    return error


async def last_position(stack: Stack) -> int:
    """The position of the newest event in the stack's store."""
    store = await open_store(nats_url=stack.nats_url)
    try:
        return await store.last_position()
    finally:
        await store.close()


async def events_in(store: EventStore, namespace: str, after: int) -> list[str]:
    """Types of the events of ``namespace`` appended after position ``after``.

    Other tests' agents (periodic triggers, idle instances) may append meanwhile; only the
    events of ``namespace`` are returned.
    """
    last = await store.last_position()
    if last <= after:
        return []
    found = []
    subscription = store.subscribe(after)
    try:
        async for event in subscription:
            if event.namespace == namespace:
                found.append(event.type)
            if event.position >= last:
                break
    finally:
        await subscription.close()
    return found


async def consumer_count(nc: nats.NATS) -> int:
    """How many consumers the event store's JetStream stream has (each store subscription
    holds one)."""
    reply = await nc.request("$JS.API.STREAM.INFO.PARLEY_EVENTS", b"", timeout=5)
    count: int = json.loads(reply.data)["state"]["consumer_count"]
    return count


async def consumers_back_to(nc: nats.NATS, baseline: int) -> None:
    """Wait until the store's consumers are down to ``baseline`` again, well under the
    store's 30 s inactivity cleanup."""
    async with asyncio.timeout(5):
        while await consumer_count(nc) > baseline:  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.05)


class World:
    """The 'internet' for the http_request tool, on loopback: counts hits per path; a path
    that starts with ``slow`` holds its answer until :attr:`release` is set (or ``hold_s``
    seconds pass, when given). ``async with World() as world:`` runs it."""

    def __init__(self, hold_s: float | None = None) -> None:
        self.hits: dict[str, int] = {}
        self.held: dict[str, asyncio.Event] = {}
        self.release = asyncio.Event()
        self._hold_s = hold_s
        app = web.Application()
        app.router.add_get("/{name}", self._handle)
        self._server = Loopback(app)
        self.port = 0

    async def __aenter__(self) -> "World":
        self.port = (await self._server.start()).port
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release.set()
        await self._server.stop()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def was_held(self, name: str) -> asyncio.Event:
        """Set once a request for the slow path ``name`` arrived and is being held."""
        return self.held.setdefault(name, asyncio.Event())

    def reset(self) -> None:
        """Hold slow paths again (until the next :attr:`release`)."""
        self.release = asyncio.Event()
        self.held = {}

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name.startswith("slow"):
            self.was_held(name).set()
            try:
                await asyncio.wait_for(self.release.wait(), self._hold_s)
            except TimeoutError:
                pass
        return web.json_response({"page": name})


async def deployment_view(http: httpx.AsyncClient, deployment_id: str) -> dict[str, Any]:
    """``GET /deployments/{id}``'s deployment (asserted ``200``)."""
    view: dict[str, Any] = body_of(await http.get(f"/api/v1/deployments/{deployment_id}"))["data"]
    return view


async def deployment_in(
    http: httpx.AsyncClient, deployment_id: str, status: str, stage: int | None = None
) -> dict[str, Any]:
    """The deployment once it reaches ``status`` (and ``stage``, if given); polled, 60 s."""
    async with asyncio.timeout(60):
        while True:
            view = await deployment_view(http, deployment_id)
            if view["status"] == status and (stage is None or view["current_stage"] == stage):
                return view
            await asyncio.sleep(0.05)


async def hub_subscribers(client: httpx.AsyncClient) -> float:
    """The edge's `parley_event_hub_subscribers` gauge."""
    text = (await client.get("/metrics")).text
    return next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("parley_event_hub_subscribers ")
    )


async def settled_hub_subscribers(client: httpx.AsyncClient) -> float:
    """The hub's subscriber count once the connections closed before have left it."""
    last = await hub_subscribers(client)
    for _ in range(50):
        await asyncio.sleep(0.1)
        now = await hub_subscribers(client)
        if now == last:
            return now
        last = now
    return last


class HubCheck:
    """The edge's shared event feed around a test's subscriptions: each one it serves shows
    in its gauge, none makes a JetStream consumer, and all leave when their clients go."""

    def __init__(self, client: httpx.AsyncClient, nc: nats.NATS, served: float, consumers: int):
        self.client, self.nc, self.served, self.consumers = client, nc, served, consumers

    @classmethod
    async def start(cls, client: httpx.AsyncClient, nc: nats.NATS) -> "HubCheck":
        """Note the settled subscriber count and the consumers (the feed already exists)."""
        return cls(client, nc, await settled_hub_subscribers(client), await consumer_count(nc))

    async def serving(self, more: int) -> None:
        """``more`` subscriptions are served by the feed, with no consumer of their own."""
        assert await hub_subscribers(self.client) == self.served + more
        assert await consumer_count(self.nc) == self.consumers

    async def released(self) -> None:
        """Every subscription since :meth:`start` has left."""
        await consumers_back_to(self.nc, self.consumers)
        assert await settled_hub_subscribers(self.client) == self.served
