"""The event loop a Parley process runs on: uvloop where it is installed (Linux, macOS).

uvloop's transports write to the socket without a trip through the selector and run the
loop's bookkeeping in C: on the hot paths (a NATS message per event, per command, per
reply) that is CPU time every service gets back. Elsewhere asyncio's own loop runs.
The edge gets the same loop from uvicorn (``loop="auto"`` picks uvloop when installed).
"""

import asyncio
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop (uvloop's when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)
