"""Agent names are unique per namespace through a claim stream per name."""

from datetime import UTC
from datetime import datetime

import msgspec
import pytest

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.name_claim import Claim
from parley.aggregates.name_claim import NameClaim
from parley.aggregates.name_claim import Release
from parley.aggregates.name_claim import decide as decide_claim
from parley.aggregates.name_claim import evolve as evolve_claim
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentNameClaimed
from parley.contracts.registry import AgentNameReleased
from parley.contracts.registry import name_stream

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NAME, NS = "helper", "acme"


def fold(state: NameClaim | None, decided: Decided) -> NameClaim | None:
    version = state.version if state is not None else 0
    for offset, (event_type, payload) in enumerate(decided, start=1):
        new = NewEvent(
            type=event_type, subject=NAME, data=msgspec.to_builtins(payload), namespace=NS, time=NOW
        )
        state = evolve_claim(
            state, Event.record(new, stream=name_stream(NS, NAME), version=version + offset)
        )
    return state


def claim(state: NameClaim | None, agent_id: str, *, agent_exists: bool = True) -> Decided:
    command = Claim(agent_id=agent_id, name=NAME, namespace=NS, agent_exists=agent_exists)
    return decide_claim(state, command, Context(NOW)).events


def held_by(agent_id: str) -> NameClaim | None:
    return fold(None, claim(None, agent_id))


def test_a_free_name_is_claimed_by_the_first_agent() -> None:
    decided = claim(None, "a1")
    assert decided == [("agent_name.claimed", AgentNameClaimed(name=NAME, agent_id="a1"))]
    assert fold(None, decided) == NameClaim(holder="a1", version=1)


def test_a_name_held_by_a_live_agent_is_refused_as_already_existing() -> None:
    with pytest.raises(ParleyError) as info:
        claim(held_by("a1"), "a2", agent_exists=True)
    assert info.value.code is ErrorCode.AGENT_ALREADY_EXISTS
    assert info.value.message == "an agent named 'helper' already exists in namespace acme"
    assert info.value.details == {"name": NAME, "namespace": NS, "agent_id": "a1"}


def test_the_holder_reclaiming_its_own_name_is_an_idempotent_no_op() -> None:
    assert claim(held_by("a1"), "a1") == []


def test_a_claim_whose_holder_was_never_created_is_taken_over() -> None:
    decided = claim(held_by("a1"), "a2", agent_exists=False)
    assert decided == [("agent_name.claimed", AgentNameClaimed(name=NAME, agent_id="a2"))]
    assert fold(held_by("a1"), decided) == NameClaim(holder="a2", version=2)


def test_a_released_name_can_be_claimed_by_another_agent() -> None:
    state = held_by("a1")
    released = fold(
        state, decide_claim(state, Release(agent_id="a1", name=NAME), Context(NOW)).events
    )
    assert released == NameClaim(holder=None, version=2)
    assert fold(released, claim(released, "a2")) == NameClaim(holder="a2", version=3)


def test_releasing_emits_agent_name_released() -> None:
    assert decide_claim(held_by("a1"), Release(agent_id="a1", name=NAME), Context(NOW)).events == [
        ("agent_name.released", AgentNameReleased(name=NAME, agent_id="a1"))
    ]


@pytest.mark.parametrize("state", [None, NameClaim(), NameClaim(holder="a2", version=4)])
def test_releasing_a_name_the_agent_does_not_hold_is_a_no_op(state: NameClaim | None) -> None:
    assert decide_claim(state, Release(agent_id="a1", name=NAME), Context(NOW)).events == []


def test_a_stale_release_does_not_free_a_name_taken_over_by_another_agent() -> None:
    state = NameClaim(holder="a2", version=2)
    stale = [("agent_name.released", AgentNameReleased(name=NAME, agent_id="a1"))]
    assert fold(state, stale) == NameClaim(holder="a2", version=3)  # type: ignore[arg-type]


def test_unknown_claim_events_only_advance_the_version() -> None:
    event = Event.record(
        NewEvent(type="agent_name.audited", subject=NAME, data={}, time=NOW),
        stream=name_stream(NS, NAME),
        version=2,
    )
    assert evolve_claim(NameClaim(holder="a1", version=1), event) == NameClaim(
        holder="a1", version=2
    )
