"""Helpers shared by the end-to-end tests (importable: `tests/` is on sys.path)."""

import asyncio
import concurrent.futures
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import nats

from parley.contracts.envelope import Event
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store
from parley.identity.bootstrap import ADMIN_KEY_FILE, bootstrap_admin_key_at

__all__ = ["admin_key", "auth_headers", "edge_client", "stream_events"]


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
