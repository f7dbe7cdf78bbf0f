"""`json_query`: select and reshape JSON with JMESPath."""

from typing import Any

import jmespath  # type: ignore[import-untyped]
import msgspec
from jmespath.exceptions import JMESPathError  # type: ignore[import-untyped]

from parley.contracts.tools import JsonQueryArgs
from parley.contracts.tools import JsonQueryConfig
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["json_query", "query"]


def query(data: Any, expression: str, max_bytes: int) -> Any:
    """Apply a JMESPath ``expression`` to ``data`` (a JSON value or a string of JSON).

    Raises:
        ToolError: ``too_large`` when the input or the result exceeds ``max_bytes`` as JSON;
            ``invalid_arguments`` for a string that is not JSON or a bad expression.
    """
    if isinstance(data, str):
        if len(data.encode()) > max_bytes:
            raise ToolError("too_large", f"data is over {max_bytes} bytes")
        try:
            data = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise ToolError("invalid_arguments", f"data is a string but not JSON: {exc}") from None
    elif len(msgspec.json.encode(data)) > max_bytes:
        raise ToolError("too_large", f"data is over {max_bytes} bytes as JSON")
    try:
        result = jmespath.search(expression, data)
    except JMESPathError as exc:
        message = " ".join(str(exc).split())
        raise ToolError("invalid_arguments", f"bad JMESPath expression: {message}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise ToolError("failed", f"the query could not be evaluated: {exc}") from None
    return result


@builtin("json_query", JsonQueryArgs, JsonQueryConfig)
async def json_query(
    arguments: JsonQueryArgs, config: JsonQueryConfig, ctx: ToolContext
) -> ToolOutcome:
    """The query's result, as JSON text."""
    result = query(arguments.data, arguments.expression, config.max_input_bytes)
    content = msgspec.json.encode(result)
    if len(content) > config.max_input_bytes:
        raise ToolError(
            "too_large", f"the result is over {config.max_input_bytes} bytes; select less"
        )
    return ToolOutcome(content=content.decode(), data={"result": result})
