"""A loopback stack for a group of figures, its processes watched (:func:`bench._stats.watching`:
every figure also prints the CPU each process spent per operation)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench._stats import watching
from parley.devstack.stack import Stack

__all__ = ["running"]


@contextlib.asynccontextmanager
async def running(
    directory: Path, env: dict[str, str] | None = None, **options: Any
) -> AsyncIterator[Stack]:
    """A stack in ``directory`` (``options`` for :class:`Stack`: ``cluster_mode``,
    ``combined``), started for the block and stopped after it."""
    stack = Stack(directory, env=env, **options)
    await asyncio.to_thread(stack.start)
    pids = {name: process.pid for name, process in stack.processes.items()}
    for node in stack.nats_nodes:
        if node.process is not None:
            pids[f"nats-server {node.name}" if len(stack.nats_nodes) > 1 else "nats"] = (
                node.process.pid
            )
    try:
        with watching(pids):
            yield stack
    finally:
        await asyncio.to_thread(stack.stop)
