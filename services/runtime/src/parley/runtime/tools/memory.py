"""The `remember` and `recall` tools: an agent with ``memory.enabled`` records what it learns
in its memory and searches it (its ``memory.scope``: its own, its cluster's or its
namespace's; never another namespace's)."""

import msgspec

from parley.contracts.memory import MemoryWrite
from parley.contracts.tools import RecallArgs
from parley.contracts.tools import RecallConfig
from parley.contracts.tools import RememberArgs
from parley.contracts.tools import RememberConfig
from parley.runtime.tools.base import MemoryAccess
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["recall", "remember"]


def _memory(ctx: ToolContext) -> MemoryAccess:
    if ctx.memory is None:
        raise ToolError("refused", "this agent has no memory: set memory.enabled in its spec")
    return ctx.memory


@builtin("remember", RememberArgs, RememberConfig)
async def remember(arguments: RememberArgs, _: RememberConfig, ctx: ToolContext) -> ToolOutcome:
    """Record the entities and relations; what was new, as JSON text."""
    if not arguments.entities and not arguments.relations:
        raise ToolError("invalid_arguments", "give at least one entity or relation")
    write = MemoryWrite(entities=arguments.entities, relations=arguments.relations)
    outcome = await _memory(ctx).remember(write)
    return ToolOutcome(content=msgspec.json.encode(outcome).decode(), data=outcome)


@builtin("recall", RecallArgs, RecallConfig)
async def recall(arguments: RecallArgs, _: RecallConfig, ctx: ToolContext) -> ToolOutcome:
    """The entities nearest the query, best first, as JSON text."""
    found = await _memory(ctx).recall(arguments.query, arguments.limit)
    return ToolOutcome(content=msgspec.json.encode(found).decode(), data=found)
