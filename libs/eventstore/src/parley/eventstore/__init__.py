"""Parley's event store: one port, two backends (JetStream, KurrentDB), one in memory for
tests (:mod:`parley.eventstore.memory`), and the one command path
(:mod:`parley.eventstore.repository`)."""

from typing import Any

from parley.eventstore.port import (
    ANY_VERSION,
    NO_STREAM,
    AppendResult,
    ConcurrencyConflict,
    EventStore,
    EventStoreError,
    EventStoreUnavailable,
    EventTooLarge,
    InvalidStreamName,
    Subscription,
)

__all__ = [
    "ANY_VERSION",
    "NO_STREAM",
    "AppendResult",
    "ConcurrencyConflict",
    "EventStore",
    "EventStoreError",
    "EventStoreUnavailable",
    "EventTooLarge",
    "InvalidStreamName",
    "Subscription",
    "open_store",
]


def __getattr__(name: str) -> Any:  # a lazy import keeps the backends optional at import time
    if name == "open_store":
        from parley.eventstore.factory import open_store

        return open_store
    raise AttributeError(name)
