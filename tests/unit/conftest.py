"""Fixtures shared by the unit tests: the registry's command table over an in-memory store."""

import pytest

from parley.eventstore.memory import MemoryEventStore
from parley.registry.handlers import Registry


@pytest.fixture
def store() -> MemoryEventStore:
    """An empty in-memory event store."""
    return MemoryEventStore()


@pytest.fixture
def registry(store: MemoryEventStore) -> Registry:
    """The registry's handlers over :func:`store`."""
    return Registry(store)
