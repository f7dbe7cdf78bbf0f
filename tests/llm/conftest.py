"""Fixtures for the provider adapters: one wire-compatible server per session, real SDKs."""

from collections.abc import AsyncIterator

import pytest
from llm_support import settings_for
from wire_server import WireServer

from parley.llm import provider_for
from parley.llm._base import GuardedProvider


@pytest.fixture(scope="session")
async def wire() -> AsyncIterator[WireServer]:
    """The fake Anthropic/OpenAI server on a free loopback port."""
    server = await WireServer().start()
    yield server
    await server.stop()


@pytest.fixture(params=["anthropic", "openai"])
async def provider(
    request: pytest.FixtureRequest, wire: WireServer
) -> AsyncIterator[GuardedProvider]:
    """Each SDK adapter pointed at the wire server, with a fresh breaker and empty script."""
    api = request.param
    wire.script(api)
    adapter = provider_for(api, settings_for(wire, api))
    assert isinstance(adapter, GuardedProvider)
    yield adapter
    await adapter.aclose()
