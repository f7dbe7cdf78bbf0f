"""Names the platform knows: providers, built-in tools, strategies, trigger types.

The registry refuses an agent that names anything outside these sets
(``PROVIDER_NOT_AVAILABLE``, ``TOOL_NOT_AVAILABLE``, ``STRATEGY_NOT_AVAILABLE``).
"""

__all__ = ["PROVIDERS", "STRATEGIES", "TOOLS"]

PROVIDERS: frozenset[str] = frozenset({"offline", "anthropic", "openai", "openai_compatible"})
"""Provider adapters; `offline` is deterministic and needs no key."""

TOOLS: frozenset[str] = frozenset(
    {"http_request", "calculator", "current_time", "read_file", "json_query", "send_message"}
)
"""Built-in tools an agent may list in its definition."""

STRATEGIES: frozenset[str] = frozenset({"reactive", "plan_and_execute"})
"""Execution strategies."""
