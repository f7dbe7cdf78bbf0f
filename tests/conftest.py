"""Session-wide fixtures: one real nats-server with JetStream per test session."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.devstack.nats import NatsServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A real nats-server with JetStream on a free loopback port and a temp store dir."""
    server = NatsServer(Path(tmp_path_factory.mktemp("nats"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """Client URL of the session's nats-server, with the services' credentials."""
    return nats_server.url
