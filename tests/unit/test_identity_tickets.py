"""Single-use WebSocket tickets in a NATS KV bucket, against the session's real nats-server.

Two stores on two connections stand for two edge processes.
"""

import asyncio
from datetime import timedelta

import pytest
from nats.aio.client import Client

from parley.contracts.envelope import utcnow
from parley.contracts.identity import Role
from parley.contracts.ids import new_id
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal
from parley.identity.tickets import TICKET_PREFIX
from parley.identity.tickets import TICKET_TTL
from parley.identity.tickets import TicketStore

ANN = Principal(
    id="key:ann", kind="key", roles=frozenset({Role.VIEWER}), namespaces=frozenset({"team-a"})
)


@pytest.fixture
async def edges(connections: list[Client]) -> list[TicketStore]:
    """Two edge processes' ticket stores on one (test-unique) bucket."""
    bucket = f"tickets-{new_id()}"
    stores = [TicketStore(nc.jetstream(), bucket) for nc in connections]
    for store in stores:
        await store.start()
    return stores


async def test_a_ticket_minted_by_one_edge_is_redeemed_once_by_another(
    edges: list[TicketStore],
) -> None:
    one, other = edges
    ticket = await one.mint(ANN)
    assert ticket.startswith(TICKET_PREFIX) and len(ticket) > 40
    assert await other.redeem(ticket) == ANN
    with pytest.raises(AuthenticationError, match="unknown, used or expired"):
        await one.redeem(ticket)
    with pytest.raises(AuthenticationError):
        await other.redeem(ticket)


async def test_of_many_concurrent_redeems_exactly_one_succeeds(edges: list[TicketStore]) -> None:
    ticket = await edges[0].mint(ANN)
    results = await asyncio.gather(
        *(edges[i % 2].redeem(ticket) for i in range(10)), return_exceptions=True
    )
    assert [r for r in results if r == ANN] == [ANN]
    assert all(isinstance(r, AuthenticationError) for r in results if r != ANN)


async def test_an_expired_ticket_is_refused(edges: list[TicketStore]) -> None:
    ticket = await edges[0].mint(ANN, now=utcnow() - TICKET_TTL - timedelta(seconds=1))
    with pytest.raises(AuthenticationError, match="ticket expired"):
        await edges[1].redeem(ticket)


async def test_unknown_and_malformed_tickets_are_refused(edges: list[TicketStore]) -> None:
    with pytest.raises(AuthenticationError, match="malformed"):
        await edges[0].redeem("pk_not_a_ticket")
    with pytest.raises(AuthenticationError, match="unknown"):
        await edges[0].redeem(TICKET_PREFIX + "A" * 43)


async def test_the_bucket_holds_digests_not_tickets(
    edges: list[TicketStore], connections: list[Client]
) -> None:
    ticket = await edges[0].mint(ANN)
    kv = await connections[0].jetstream().key_value(edges[0].bucket)
    keys = await kv.keys()
    assert keys and all(ticket not in key and ticket[3:] not in key for key in keys)
    status = await kv.status()
    assert status.ttl == TICKET_TTL.total_seconds()
