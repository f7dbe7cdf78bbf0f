"""Parley's event store: one port, two backends (JetStream, KurrentDB), one in memory for
tests (:mod:`parley.eventstore.memory`), and the one command path
(:mod:`parley.eventstore.repository`)."""

from typing import Any

from parley.eventstore import port
from parley.eventstore.port import *  # noqa: F403

__all__ = [*port.__all__, "open_store"]  # noqa: F405 (open_store is the lazy import below)


def __getattr__(name: str) -> Any:  # a lazy import keeps the backends optional at import time
    if name == "open_store":
        from parley.eventstore.factory import open_store

        return open_store
    raise AttributeError(name)
