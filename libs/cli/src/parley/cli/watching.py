"""Following something until it settles: re-read it while it changes."""

import json
import time
from collections.abc import Callable
from typing import Any

__all__ = ["follow", "parse_value"]


def follow(
    read: Callable[[], Any],
    settled: Callable[[Any], bool],
    on_change: Callable[[Any], None],
    every: float = 0.25,
) -> Any:
    """Read with ``read`` every ``every`` seconds, calling ``on_change`` with each new
    answer, until ``settled`` holds for one; that answer."""
    last: Any = None
    while True:
        now = read()
        if now != last:
            on_change(now)
            last = now
        if settled(now):
            return now
        time.sleep(every)


def parse_value(raw: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw
