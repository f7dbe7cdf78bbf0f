"""Fixtures for the provider adapters: one wire-compatible server per session, real SDKs."""

from collections.abc import AsyncIterator

import pytest
from llm_support import SECRET_KEY
from wire_server import WireServer

from parley.llm import ProviderSettings, provider_for
from parley.llm._base import GuardedProvider


@pytest.fixture(scope="session")
async def wire() -> AsyncIterator[WireServer]:
    """The fake Anthropic/OpenAI server on a free loopback port."""
    server = await WireServer().start()
    yield server
    await server.stop()


def settings_for(wire: WireServer, api: str, **overrides: object) -> ProviderSettings:
    """Fast test settings: 0.5 s idle timeout, tiny backoff, key set explicitly."""
    values: dict[str, object] = {
        "api_key": SECRET_KEY,
        "base_url": wire.url if api == "anthropic" else f"{wire.url}/v1",
        "connect_timeout": 1.0,
        "idle_timeout": 0.5,
        "backoff": 0.01,
        "retry_after_cap": 1.0,
        "breaker_threshold": 3,
        "breaker_cooldown": 60.0,
    }
    values.update(overrides)
    return ProviderSettings(**values)  # type: ignore[arg-type]


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
