"""End-to-end fixtures: the real stack (nats-server, services, edge) as processes."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from parley.devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack for the session, on free ports with a temp state dir."""
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the stack's edge."""
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as http:
        yield http
