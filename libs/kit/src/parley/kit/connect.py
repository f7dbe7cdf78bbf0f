"""A process's two connections, from its settings: NATS, and the event store over it."""

from typing import Any

import nats
from nats.aio.client import Client

from parley.eventstore import EventStore
from parley.eventstore.factory import open_store
from parley.eventstore.nats_parser import fast_parser
from parley.kit.needs import Keeper
from parley.kit.settings import ServiceSettings

__all__ = ["connect_nats", "open_service_store"]


async def connect_nats(
    settings: ServiceSettings, name: str, keeper: Keeper, **options: Any
) -> Client:
    """A connection named ``name`` that reconnects for ever (every 0.25 s) and tells
    ``keeper`` when it is back, so what the server lost is made again; ``options`` go on
    to ``nats.connect``. It reads with :class:`~parley.eventstore.nats_parser.FastParser`."""
    nc = await nats.connect(
        **settings.nats_connect_options(),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        reconnected_cb=keeper.reconnected,
        **options,
    )
    fast_parser(nc)
    return nc


async def open_service_store(settings: ServiceSettings, nc: Client) -> EventStore:
    """The event store the settings name, over the process's connection ``nc``."""
    return await open_store(
        backend=settings.eventstore,
        nats_url=settings.nats_url,
        kurrentdb_url=settings.kurrentdb_url,
        nc=nc,
        replicas=settings.nats_replicas,
    )
