"""Helpers shared by the end-to-end tests (importable: `tests/` is on sys.path)."""

import asyncio
import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TypeVar

import httpx
import msgspec
import nats

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key_at

__all__ = [
    "VOLATILE_KEYS",
    "admin_key",
    "auth_headers",
    "capture_views",
    "edge_client",
    "eventually",
    "export_events",
    "normalise",
    "replay_events",
    "stream_events",
]

T = TypeVar("T")


async def stream_events(stack: Stack, stream: str) -> list[Event]:
    """Every event of one stream, read straight from the stack's event store."""
    nc = await nats.connect(stack.nats_url)
    try:
        store = await open_store(backend="jetstream", nats_url=stack.nats_url, nc=nc)
        try:
            return await store.read(stream)
        finally:
            await store.close()
    finally:
        await nc.close()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 15.0, every: float = 0.05
) -> T:
    """The first truthy answer of ``probe``, polled until ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {answer!r})")
        await asyncio.sleep(every)


# --- stored history: export a store, append it into a fresh one, compare views --------------


async def export_events(nats_url: str) -> list[Event]:
    """Every event of the store from position 0 to its newest, in position order."""
    store = await open_store(backend="jetstream", nats_url=nats_url)
    try:
        last = await store.last_position()
        events: list[Event] = []
        if last == 0:
            return events
        feed = store.subscribe(0)
        try:
            async with asyncio.timeout(60):
                async for event in feed:
                    events.append(event)
                    if event.position >= last:
                        break
        finally:
            await feed.close()
        return events
    finally:
        await store.close()


async def replay_events(nats_url: str, events: Iterable[Event]) -> None:
    """Append recorded ``events`` into the store at ``nats_url`` exactly as recorded.

    One append per event, to the recorded stream at the recorded version, with every
    :class:`NewEvent` field taken from the record; into an empty store this puts each event
    at its recorded position too (checked).
    """
    store = await open_store(backend="jetstream", nats_url=nats_url)
    try:
        for event in events:
            new = NewEvent(**{name: getattr(event, name) for name in NewEvent.__struct_fields__})
            landed = await store.append(event.stream, [new], expected_version=event.version - 1)
            assert (landed.version, landed.position) == (event.version, event.position), (
                f"{event.type} of {event.stream} landed at {landed}, recorded at "
                f"version {event.version}, position {event.position}"
            )
    finally:
        await store.close()


VOLATILE_KEYS = frozenset({"request_id", "trace_id", "active_conversations"})
"""Keys whose values depend on the request or the time of reading, not on the stored history
(``active_conversations`` counts the sessions active in the 15 minutes before the read)."""


def normalise(value: Any) -> Any:
    """``value`` with the :data:`VOLATILE_KEYS` replaced by a placeholder, at any depth."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE_KEYS else normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


async def capture_views(
    client: httpx.AsyncClient, requests: Iterable[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """``{"<namespace> <path>": {"status", "body"}}`` for each ``(namespace, path)`` GET
    (a ``429`` is waited out and read again)."""
    views: dict[str, dict[str, Any]] = {}
    for namespace, path in requests:
        response = await client.get(path, headers={"X-Parley-Namespace": namespace})
        for _ in range(30):  # a rate-limited read is no view: wait it out
            if response.status_code != 429:
                break
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            response = await client.get(path, headers={"X-Parley-Namespace": namespace})
        body = msgspec.json.decode(response.content) if response.content else None
        views[f"{namespace} {path}"] = {"status": response.status_code, "body": normalise(body)}
    return views


def view_differences(recorded: dict[str, Any], served: dict[str, Any]) -> list[str]:
    """One line per recorded leaf of the views ``recorded`` (as :func:`capture_views` gives
    them) that ``served`` does not serve alike. A field a view gained since it was recorded
    is no difference: views grow additively."""
    return [line for key in recorded for line in _differences(key, recorded[key], served[key])]


def _differences(path: str, recorded: Any, served: Any) -> Iterator[str]:
    if isinstance(recorded, dict) and isinstance(served, dict):
        for key in sorted(recorded):
            yield from _differences(f"{path}.{key}", recorded[key], served.get(key, _MISSING))
    elif isinstance(recorded, list) and isinstance(served, list) and len(recorded) == len(served):
        for i, (was, now) in enumerate(zip(recorded, served, strict=True)):
            yield from _differences(f"{path}[{i}]", was, now)
    elif recorded != served:
        yield f"{path}: recorded {json.dumps(recorded)}, served {json.dumps(served)}"


_MISSING = "<missing>"


# --- credentials: every e2e client holds the stack's bootstrap admin key -----------------

_KEYS: dict[Path, str] = {}


def admin_key(stack: Stack) -> str:
    """The stack's bootstrap admin key (``<state dir>/admin.key``), made on first use when the
    launcher did not make it, and accepted by the stack's edge before it is returned."""
    path = stack.state_dir / ADMIN_KEY_FILE
    if (known := _KEYS.get(path)) is not None and path.exists():
        return known
    if not path.exists():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # callable from a running loop
            pool.submit(
                asyncio.run, bootstrap_admin_key_at(stack.nats_url, stack.state_dir)
            ).result()
    key = path.read_text().strip()
    _wait_accepted(stack.edge_url, key)
    _KEYS[path] = key
    return key


def auth_headers(stack: Stack) -> dict[str, str]:
    """``{"X-API-Key": <the admin key>}``, for clients a test opens itself."""
    return {"X-API-Key": admin_key(stack)}


def edge_client(stack: Stack, **options: Any) -> httpx.AsyncClient:
    """An HTTP client for the stack's edge that holds the admin key."""
    headers = {**auth_headers(stack), **options.pop("headers", {})}
    return httpx.AsyncClient(base_url=stack.edge_url, headers=headers, **options)


def _wait_accepted(edge_url: str, key: str, within: float = 10.0) -> None:
    """Wait until the edge's key index knows ``key`` (it follows the store live)."""
    deadline = time.monotonic() + within
    request = urllib.request.Request(edge_url + "/api/v1/keys", headers={"X-API-Key": key})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 401 or time.monotonic() > deadline:
                return
        except OSError:
            if time.monotonic() > deadline:
                return
        time.sleep(0.05)
