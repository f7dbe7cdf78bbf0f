"""Built-in tools: `http_request`, `calculator`, `current_time`, `read_file`, `json_query`,
`send_message`.

Each tool implements :class:`~parley.runtime.tools.base.Tool` against the config and argument
Structs of :mod:`parley.contracts.tools`; the runtime calls them only through
:func:`~parley.runtime.tools.registry.run_tool`.
"""

from parley.runtime.tools.base import (
    FileReader,
    Messenger,
    Tool,
    ToolContext,
    ToolError,
    ToolOutcome,
)
from parley.runtime.tools.registry import TOOLS, get_tool, run_tool

__all__ = [
    "TOOLS",
    "FileReader",
    "Messenger",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "get_tool",
    "run_tool",
]
