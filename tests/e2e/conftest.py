"""End-to-end fixtures: the real stack (nats-server, services, edge) as processes.

Authentication is on, as in production: the stack's bootstrap admin key (``admin.key`` in
its state dir) is what the ``client`` fixture, and every client a test opens through
``tests_support.edge_client``/``auth_headers``, sends.
"""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from tests_support import admin_key, edge_client

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
    async with edge_client(stack, timeout=10) as http:
        yield http
