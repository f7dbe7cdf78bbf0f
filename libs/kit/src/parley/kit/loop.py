"""The event loop a Parley process runs on: uvloop where it is installed (Linux, macOS).

uvloop's transports write to the socket without a trip through the selector and run the
loop's bookkeeping in C: on the hot paths (a NATS message per event, per command, per
reply) that is CPU time every service gets back. Elsewhere asyncio's own loop runs.
The edge gets the same loop from uvicorn (``loop="auto"`` picks uvloop when installed).

Every process also tunes the garbage collector (:func:`tune_gc`): the views a service keeps
in memory (agents, conversations, sessions) are many small long-lived objects, and with
Python's default thresholds the collector walks them again and again while messages flow
(15-25% of the messaging service's and the runtime's CPU at 64 conversations in flight).
"""

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

__all__ = ["GC_THRESHOLDS", "run", "tune_gc"]

T = TypeVar("T")


GC_THRESHOLDS = (20_000, 20, 20)
"""Allocations before a young collection (Python's default: 700), then young collections per
middle one and middle ones per full one (10, 10). Objects in cycles live a little longer;
the long-lived views are walked far less often."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS`, and move what start-up made (modules, classes, settings)
    out of the collector's sight for good (:func:`gc.freeze`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop (uvloop's when available), with the
    collector tuned (:func:`tune_gc`)."""
    tune_gc()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)
