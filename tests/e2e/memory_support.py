"""What the memory end-to-end tests share: the entities they remember, and a memory
projection rebuilt from the store (importable: ``tests/e2e`` is on sys.path)."""

import contextlib
from collections.abc import AsyncIterator

from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store
from parley.memory.book import MemoryProjection

SALES = {
    "name": "Q3SalesInsight",
    "entity_type": "business_insight",
    "observations": ["Q3 sales increased 23% over Q2", "Mobile channel drove 67% of growth"],
}
ALICE = {
    "name": "Alice",
    "entity_type": "person",
    "observations": ["Alice is the data engineer who maintains the warehouse"],
}
COFFEE = {
    "name": "OfficeCoffee",
    "entity_type": "fact",
    "observations": ["The office coffee machine is on the third floor"],
}


@contextlib.asynccontextmanager
async def rebuilt(stack: Stack) -> AsyncIterator[MemoryProjection]:
    """A memory projection of the stack's store of its own, folded from position 0 up to
    the store's last event (as a fresh process rebuilds it)."""
    store = await open_store(nats_url=stack.nats_url)
    projection = MemoryProjection(store)
    try:
        await projection.start()
        assert await projection.wait_for(await store.last_position(), within=10)
        yield projection
    finally:
        await projection.stop()
        await store.close()
