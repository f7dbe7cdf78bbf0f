"""`current_time`: the date and time now, in an IANA time zone."""

import zoneinfo

import msgspec

from parley.contracts.tools import CurrentTimeArgs
from parley.contracts.tools import CurrentTimeConfig
from parley.contracts.tools import timezone_problem
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["current_time"]


@builtin("current_time", CurrentTimeArgs, CurrentTimeConfig)
async def current_time(
    arguments: CurrentTimeArgs, config: CurrentTimeConfig, ctx: ToolContext
) -> ToolOutcome:
    """ISO 8601 time, unix seconds, zone and UTC offset, from ``ctx.now``."""
    name = arguments.timezone or config.default_timezone
    if problem := timezone_problem(name):
        raise ToolError("invalid_arguments", problem)
    now = ctx.now().astimezone(zoneinfo.ZoneInfo(name))
    data = {
        "iso": now.isoformat(),
        "unix": round(now.timestamp(), 3),
        "timezone": name,
        "utc_offset": now.strftime("%z")[:3] + ":" + now.strftime("%z")[3:],
        "weekday": now.strftime("%A"),
    }
    return ToolOutcome(content=msgspec.json.encode(data).decode(), data=data)
