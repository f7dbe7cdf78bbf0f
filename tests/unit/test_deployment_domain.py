"""The deployment aggregate: canary stages on the clock, rollback past the error threshold,
promote, pause and resume by hand, and one active deployment per agent (the slot)."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from parley.aggregates import deployment, deployment_slot
from parley.aggregates.decision import Context, Decided
from parley.aggregates.deployment import Action, Complete, Create, Deployment, Tick
from parley.aggregates.deployment_slot import Claim, Slot
from parley.contracts.deployments import (
    DeploymentCreated,
    Health,
    Stage,
    Strategy,
    deployment_stream,
    slot_stream,
)
from parley.contracts.envelope import Event, NewEvent
from parley.contracts.errors import ErrorCode, ParleyError
from parley.contracts.registry import AgentSpec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NS, DEP, AGENT = "acme", "d1", "a1"
CANARY = [
    Stage(percentage=10, duration_s=300),
    Stage(percentage=50, duration_s=600),
    Stage(percentage=100),
]


class History:
    """A deployment stream in memory: decide at a time, fold what was decided."""

    def __init__(self) -> None:
        self.state: Deployment | None = None
        self.types: list[str] = []

    def run(self, command: deployment.DeploymentCommand, at: datetime = T0) -> Decided:
        decided = deployment.decide(self.state, command, Context(at))
        for event_type, payload in decided.events:
            new = NewEvent(
                type=event_type,
                subject=DEP,
                data=msgspec.to_builtins(payload),
                namespace=NS,
                time=at,
            )
            version = len(self.types) + 1
            recorded = Event.record(new, stream=deployment_stream(NS, DEP), version=version)
            self.state = deployment.evolve(self.state, recorded)
            self.types.append(event_type)
        return decided.events

    @property
    def now(self) -> Deployment:
        assert self.state is not None
        return self.state


def created(
    strategy: Strategy = "canary", stages: list[Stage] | None = None, **rules: object
) -> Create:
    return Create(
        created=DeploymentCreated(
            deployment_id=DEP,
            agent_id=AGENT,
            spec=AgentSpec(name="helper", system_prompt="v2"),
            version_label="v2",
            strategy=strategy,
            stages=CANARY if stages is None and strategy == "canary" else stages or [],
            rollback_on_error=bool(rules.get("rollback_on_error", True)),
            error_threshold=float(rules.get("error_threshold", 0.1)),  # type: ignore[arg-type]
            min_samples=int(rules.get("min_samples", 20)),  # type: ignore[call-overload]
            from_version=3,
        )
    )


def canary() -> History:
    history = History()
    history.run(created())
    return history


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_an_immediate_deployment_is_promoted_at_once() -> None:
    history = History()
    history.run(created("immediate"))
    assert history.types == ["deployment.created", "deployment.promoted"]
    assert history.now.status == "applying"
    assert history.now.percentage == 100


def test_a_canary_starts_its_first_stage_and_advances_only_when_its_time_is_up() -> None:
    history = canary()
    assert history.types == ["deployment.created", "deployment.stage_started"]
    assert (history.now.stage, history.now.percentage) == (0, 10)
    assert history.now.due_at == after(300)
    assert history.run(Tick(), after(299)) == []
    history.run(Tick(), after(300))
    assert (history.now.stage, history.now.percentage) == (1, 50)
    assert history.run(Tick(), after(301)) == []  # a second timer of the same transition


def test_entering_a_100_percent_stage_without_time_promotes() -> None:
    history = canary()
    history.run(Tick(), after(300))
    history.run(Tick(), after(900))
    assert history.types[-2:] == ["deployment.stage_started", "deployment.promoted"]
    assert history.now.status == "applying"
    assert [s is not None for s, _ in history.now.stage_times] == [True, True, True]
    history.run(Complete(agent_version=5), after(901))
    assert (history.now.status, history.now.agent_version) == ("completed", 5)
    assert history.run(Complete(agent_version=5), after(902)) == []  # reported twice


def test_it_rolls_back_by_itself_past_the_threshold_with_the_figures() -> None:
    history = canary()
    bad = Health(samples=30, errors=6)
    decided = history.run(Tick(health=bad), after(10))
    assert [t for t, _ in decided] == ["deployment.rolled_back"]
    assert history.now.status == "rolled_back"
    assert history.now.percentage == 0
    assert history.now.health == bad
    assert history.now.reason is not None and "20.0%" in history.now.reason
    assert history.run(Tick(), after(400)) == []  # no stage after a rollback


def test_it_does_not_judge_before_min_samples_nor_when_rollback_is_off() -> None:
    history = canary()
    assert history.run(Tick(health=Health(samples=19, errors=19)), after(10)) == []
    relaxed = History()
    relaxed.run(created(rollback_on_error=False))
    assert relaxed.run(Tick(health=Health(samples=100, errors=100)), after(10)) == []


def test_pause_stops_the_clock_and_resume_gives_the_stage_its_time_left() -> None:
    history = canary()
    history.run(Action(action="pause", reason="look"), after(100))
    assert history.now.status == "paused"
    assert history.run(Tick(), after(1000)) == []
    history.run(Action(action="resume"), after(2000))
    assert history.now.due_at == after(2200)
    assert history.run(Tick(), after(2199)) == []
    history.run(Tick(), after(2200))
    assert history.now.stage == 1


def test_promote_by_hand_skips_the_stages_and_rollback_needs_an_active_deployment() -> None:
    history = canary()
    history.run(Action(action="promote"), after(5))
    assert history.now.status == "applying"
    assert history.run(Action(action="promote"), after(6)) == []
    with pytest.raises(ParleyError) as info:
        history.run(Action(action="pause"), after(6))
    assert info.value.code is ErrorCode.INVALID_STATE_TRANSITION
    history.run(Complete(agent_version=4), after(7))
    with pytest.raises(ParleyError) as info:
        history.run(Action(action="rollback", reason="late"), after(8))
    assert info.value.code is ErrorCode.INVALID_STATE_TRANSITION


def test_a_manual_rollback_keeps_its_reason() -> None:
    history = canary()
    history.run(Action(action="rollback", reason="answers are worse"), after(5))
    assert (history.now.status, history.now.reason) == ("rolled_back", "answers are worse")


@pytest.mark.parametrize(
    ("strategy", "stages"),
    [
        ("canary", []),
        ("canary", [Stage(percentage=50), Stage(percentage=10)]),
        ("immediate", [Stage(percentage=10)]),
    ],
)
def test_stages_that_make_no_rollout_are_refused(strategy: Strategy, stages: list[Stage]) -> None:
    command = created(strategy, stages)
    command = Create(created=msgspec.structs.replace(command.created, stages=stages))
    with pytest.raises(ParleyError) as info:
        deployment.decide(None, command, Context(T0))
    assert info.value.code is ErrorCode.VALIDATION_ERROR
    assert info.value.details == [
        {"field": "body.stages", "message": info.value.details[0]["message"]}
    ]  # type: ignore[index]


def _claim(
    state: Slot | None, deployment_id: str, *, holder_active: bool, seen: str | None = "held"
) -> Slot | None:
    seen_holder = (state.holder if state else None) if seen == "held" else seen
    command = Claim(
        agent_id=AGENT,
        deployment_id=deployment_id,
        seen_holder=seen_holder,
        holder_active=holder_active,
    )
    for event_type, payload in deployment_slot.decide(state, command, Context(T0)).events:
        new = NewEvent(
            type=event_type, subject=AGENT, data=msgspec.to_builtins(payload), namespace=NS, time=T0
        )
        version = (state.version if state else 0) + 1
        state = deployment_slot.evolve(
            state, Event.record(new, stream=slot_stream(NS, AGENT), version=version)
        )
    return state


def test_one_active_deployment_per_agent() -> None:
    slot = _claim(None, "d1", holder_active=False)
    assert slot is not None and slot.holder == "d1"
    with pytest.raises(ParleyError) as info:
        _claim(slot, "d2", holder_active=True)
    assert info.value.code is ErrorCode.DEPLOYMENT_IN_PROGRESS
    assert info.value.details == {"agent_id": AGENT, "deployment_id": "d1"}
    assert _claim(slot, "d1", holder_active=True) == slot  # the holder's retry
    taken = _claim(slot, "d2", holder_active=False)  # d1 finished
    assert taken is not None and (taken.holder, taken.version) == ("d2", 2)


def test_a_claim_that_lost_the_race_sees_a_holder_it_did_not_look_at_and_is_refused() -> None:
    slot = _claim(None, "d1", holder_active=False)  # d1 won while d2 saw a free slot
    with pytest.raises(ParleyError) as info:
        _claim(slot, "d2", holder_active=False, seen=None)
    assert info.value.code is ErrorCode.DEPLOYMENT_IN_PROGRESS


def test_conversations_split_by_the_stage_weights_and_keep_their_version() -> None:
    history = canary()  # 10 %
    conversations = [f"session-{i}" for i in range(4000)]
    first = {c: deployment.on_new_version(history.now, c) for c in conversations}
    assert abs(sum(first.values()) / len(conversations) - 0.10) < 0.02
    history.run(Tick(), after(300))  # 50 %
    fresh = [f"later-{i}" for i in range(4000)]
    share = sum(deployment.on_new_version(history.now, c) for c in fresh) / len(fresh)
    assert abs(share - 0.50) < 0.03
    assert all(
        deployment.on_new_version(history.now, c, first[c]) == first[c] for c in conversations
    )
    history.run(Action(action="rollback", reason="bad"), after(301))
    assert not any(deployment.on_new_version(history.now, c, True) for c in conversations[:50])


def test_every_conversation_is_on_the_new_version_once_promoted() -> None:
    history = canary()
    history.run(Action(action="promote"), after(1))
    assert all(deployment.on_new_version(history.now, f"c{i}", False) for i in range(50))
    assert deployment.bucket("same") == deployment.bucket("same")
