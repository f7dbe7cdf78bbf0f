"""End-to-end fixtures: the real stack (nats-server, services, edge) as processes.

Authentication is on, as in production: the stack's bootstrap admin key (``admin.key`` in
its state dir) is what the ``client`` fixture, and every client a test opens through
``tests_support.edge_client``/``auth_headers``, sends. ``api`` is such a client bound to
the test's own ``namespace``.

A module that needs a stack configured its own way defines a ``stack_env`` fixture (module
scope) and takes ``own_stack`` and ``http``; ``wire`` gives it a loopback model provider and
``world`` a loopback web for the ``http_request`` tool, each one per module.
"""

import uuid
from collections.abc import AsyncIterator
from collections.abc import Iterator

import httpx
import pytest
from e2e_support import World
from e2e_support import started
from tests_support import admin_key
from tests_support import edge_client
from wire_server import WireServer

from parley.devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack for the session, on free ports with a temp state dir; its
    bootstrap admin key is made before the first test."""
    running = Stack(tmp_path_factory.mktemp("stack"), env={"PARLEY_AUTH": "on"}).start()
    try:
        admin_key(running)
    except BaseException:
        running.stop()
        raise
    yield running
    running.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the stack's edge, holding the admin key."""
    async with edge_client(stack, timeout=30) as http:
        yield http


@pytest.fixture
def namespace() -> str:
    """A namespace of the test's own."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def api(stack: Stack, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the session's stack bound to the test's own ``namespace``."""
    async with edge_client(stack, timeout=20, headers={"X-Parley-Namespace": namespace}) as http:
        yield http


@pytest.fixture(scope="module")
async def own_stack(
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """A stack of the module's own, started with the module's ``stack_env`` on top of the
    defaults."""
    async with started(Stack(tmp_path_factory.mktemp(request.module.__name__), env=stack_env)) as s:
        yield s


@pytest.fixture
async def http(own_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the module's own stack, holding its admin key."""
    async with edge_client(own_stack, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def wire() -> AsyncIterator[WireServer]:
    """A loopback server speaking the Anthropic and OpenAI wire, one per module."""
    async with WireServer() as server:
        yield server


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """A loopback web for the ``http_request`` tool, one per module."""
    async with World() as running:
        yield running
