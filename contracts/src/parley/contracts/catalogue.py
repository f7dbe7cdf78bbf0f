"""Names the platform knows: providers, built-in tools, strategies, trigger types.

The registry refuses an agent that names anything outside these sets
(``PROVIDER_NOT_AVAILABLE``, ``TOOL_NOT_AVAILABLE``, ``STRATEGY_NOT_AVAILABLE``).
"""

from parley.contracts.strategies import STRATEGY_CATALOGUE
from parley.contracts.tools import TOOL_CATALOGUE

__all__ = ["PROVIDERS", "STRATEGIES", "TOOLS"]

PROVIDERS: frozenset[str] = frozenset({"offline", "anthropic", "openai", "openai_compatible"})
"""Provider adapters; `offline` is deterministic and needs no key."""

TOOLS: frozenset[str] = frozenset(TOOL_CATALOGUE)
"""Built-in tools an agent may list in its definition (see :mod:`parley.contracts.tools`)."""

STRATEGIES: frozenset[str] = frozenset(STRATEGY_CATALOGUE)
"""Execution strategies (see :mod:`parley.contracts.strategies`)."""
