"""Open the configured event store backend."""

import os

from nats.aio.client import Client

from parley.eventstore.port import EventStore
from parley.eventstore.port import EventStoreError

__all__ = ["open_store"]


async def open_store(
    *,
    backend: str | None = None,
    nats_url: str | None = None,
    kurrentdb_url: str | None = None,
    nc: Client | None = None,
    stream_name: str = "PARLEY_EVENTS",
    max_event_bytes: int = 1_048_576,
    replicas: int = 1,
) -> EventStore:
    """Open the event store named by ``backend`` (default: env ``PARLEY_EVENTSTORE``, else
    ``jetstream``).

    Args:
        backend: ``jetstream`` or ``kurrentdb``.
        nats_url: NATS URL (default: env ``PARLEY_NATS_URL``, else nats://127.0.0.1:4222).
        kurrentdb_url: KurrentDB URL (default: env ``PARLEY_KURRENTDB_URL``).
        nc: an open NATS connection to reuse; the store will not close it.
        stream_name: the JetStream stream holding every event.
        max_event_bytes: the largest encoded event the store accepts.
        replicas: copies JetStream keeps of the stream and the checkpoint bucket.

    Raises:
        EventStoreError: unknown backend or missing KurrentDB URL.
        EventStoreUnavailable: the backend cannot be reached.
    """
    chosen = (backend or os.environ.get("PARLEY_EVENTSTORE") or "jetstream").strip().lower()
    if chosen == "jetstream":
        from parley.eventstore.jetstream import JetStreamEventStore

        url = nats_url or os.environ.get("PARLEY_NATS_URL") or "nats://127.0.0.1:4222"
        return await JetStreamEventStore.open(
            url, nc=nc, stream_name=stream_name, max_event_bytes=max_event_bytes, replicas=replicas
        )
    if chosen == "kurrentdb":
        from parley.eventstore.kurrentdb import KurrentDBEventStore

        kurrent_url = kurrentdb_url or os.environ.get("PARLEY_KURRENTDB_URL")
        if not kurrent_url:
            raise EventStoreError(
                "the kurrentdb event store needs a URL: set PARLEY_KURRENTDB_URL "
                "(e.g. kurrentdb://127.0.0.1:2113?tls=false) or use PARLEY_EVENTSTORE=jetstream"
            )
        return await KurrentDBEventStore.open(kurrent_url, max_event_bytes=max_event_bytes)
    raise EventStoreError(
        f"unknown event store backend {chosen!r}: set PARLEY_EVENTSTORE to jetstream or kurrentdb"
    )
