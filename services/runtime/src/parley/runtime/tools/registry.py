"""The built-in tools by name, and :func:`run_tool`, the one way the runtime calls a tool."""

import logging
from typing import Any

from parley.contracts.tools import validate_tool_config
from parley.contracts.validation import convert_strict
from parley.runtime.tools.base import Tool
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.calculator import calculator
from parley.runtime.tools.current_time import current_time
from parley.runtime.tools.http_request import http_request
from parley.runtime.tools.json_query import json_query
from parley.runtime.tools.memory import recall
from parley.runtime.tools.memory import remember
from parley.runtime.tools.read_file import read_file
from parley.runtime.tools.send_message import send_message

__all__ = ["TOOLS", "get_tool", "run_tool"]

log = logging.getLogger(__name__)

TOOLS: dict[str, Tool[Any, Any]] = {
    tool.descriptor.name: tool
    for tool in (
        http_request,
        calculator,
        current_time,
        read_file,
        json_query,
        send_message,
        remember,
        recall,
    )
}
"""Tool name → implementation, one per entry of the contracts' ``TOOL_CATALOGUE``."""


def get_tool(name: str) -> Tool[Any, Any]:
    """The tool called ``name``.

    Raises:
        ToolError: ``not_found`` for a name that is not a built-in tool.
    """
    tool = TOOLS.get(name)
    if tool is None:
        raise ToolError("not_found", f"no tool {name!r}; tools are {', '.join(sorted(TOOLS))}")
    return tool


async def run_tool(
    name: str, arguments: dict[str, Any], raw_config: dict[str, Any], ctx: ToolContext
) -> ToolOutcome:
    """Validate a call's arguments and the tool's config, then run the tool.

    Args:
        name: Tool name, as the model called it.
        arguments: Call arguments, as the model sent them (decoded JSON).
        raw_config: The tool's config from the agent definition.
        ctx: Where the call runs.

    Raises:
        ToolError: ``invalid_arguments`` when the arguments do not fit the tool's parameters
            schema, ``failed`` for an invalid config (the registry should have refused it) or
            an unexpected error inside the tool, and whatever the tool raises.
    """
    tool = get_tool(name)
    if problems := validate_tool_config(name, raw_config):
        first = problems[0]
        raise ToolError("failed", f"invalid tool config: {first['field']}: {first['message']}")
    config, _ = convert_strict(raw_config, tool.config_type, "config")
    if not isinstance(arguments, dict):
        raise ToolError("invalid_arguments", "arguments must be a JSON object")
    parsed, problems = convert_strict(arguments, tool.arguments_type, "arguments")
    if problems:
        first = problems[0]
        raise ToolError("invalid_arguments", f"{first['field']}: {first['message']}")
    try:
        return await tool.run(parsed, config, ctx)
    except ToolError:
        raise
    except Exception as exc:
        # A bug, not a refusal: the model gets a short error, the log the traceback.
        log.exception("tool %s failed unexpectedly", name)
        raise ToolError("failed", f"{name} failed unexpectedly ({type(exc).__name__})") from exc
