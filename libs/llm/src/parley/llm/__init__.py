"""LLM provider adapters behind one port: Anthropic, OpenAI(-compatible) and offline.

The package exports the port and its errors as those modules declare them (their
``__all__``), so the public surface is listed once.
"""

from parley.llm import errors
from parley.llm import port
from parley.llm.breaker import CircuitBreaker
from parley.llm.errors import *  # noqa: F403
from parley.llm.factory import provider_for
from parley.llm.port import *  # noqa: F403
from parley.llm.scrubbed import ScrubbedProvider
from parley.llm.settings import ProviderSettings

__all__ = [
    "CircuitBreaker",
    "ProviderSettings",
    "ScrubbedProvider",
    "provider_for",
    *errors.__all__,
    *port.__all__,
]
