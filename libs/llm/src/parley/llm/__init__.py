"""LLM provider adapters behind one port: Anthropic, OpenAI(-compatible) and offline."""

from parley.llm.breaker import CircuitBreaker
from parley.llm.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamInterrupted,
)
from parley.llm.factory import provider_for
from parley.llm.port import (
    ChatRequest,
    Completion,
    Delta,
    Finished,
    Message,
    Provider,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolDef,
    Usage,
)
from parley.llm.scrubbed import ScrubbedProvider
from parley.llm.settings import ProviderSettings

__all__ = [
    "ChatRequest",
    "CircuitBreaker",
    "Completion",
    "Delta",
    "Finished",
    "Message",
    "Provider",
    "ProviderAuthError",
    "ProviderBadRequest",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderSettings",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ScrubbedProvider",
    "StreamInterrupted",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolDef",
    "Usage",
    "provider_for",
]
