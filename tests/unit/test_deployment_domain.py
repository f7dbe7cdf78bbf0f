"""The deployment aggregate: canary stages, rolling batches and blue-green phases on the clock,
rollback past the error or latency threshold, promote, pause and resume by hand, the view,
and one active deployment per agent (the slot)."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import msgspec
import pytest

from parley.aggregates import deployment
from parley.aggregates import deployment_slot
from parley.aggregates import deployment_view
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.deployment import Action
from parley.aggregates.deployment import Complete
from parley.aggregates.deployment import Create
from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment import Tick
from parley.aggregates.deployment_slot import Claim
from parley.aggregates.deployment_slot import Slot
from parley.contracts.deployments import DeploymentCreated
from parley.contracts.deployments import Health
from parley.contracts.deployments import Stage
from parley.contracts.deployments import Strategy
from parley.contracts.deployments import deployment_stream
from parley.contracts.deployments import slot_stream
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError

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
    fields = {
        "deployment_id": DEP,
        "agent_id": AGENT,
        "spec": {"name": "helper", "system_prompt": "v2"},
        "version_label": "v2",
        "strategy": strategy,
        "stages": CANARY if stages is None and strategy == "canary" else stages or [],
        "error_threshold": 0.1,
        "from_version": 3,
        **rules,
    }
    return Create(created=msgspec.convert(fields, DeploymentCreated, from_attributes=True))


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


def _share(state: Deployment, prefix: str = "c", count: int = 2000) -> float:
    return sum(deployment.on_new_version(state, f"{prefix}-{i}") for i in range(count)) / count


def test_a_rolling_deployment_moves_its_instances_batch_by_batch() -> None:
    history = History()
    history.run(created("rolling", batch_size=2, batch_pause_s=30, instances=5))
    assert history.types == ["deployment.created", "deployment.batch_started"]
    assert (history.now.stage, history.now.percentage) == (0, 40)  # 2 of 5
    assert abs(_share(history.now) - 0.40) < 0.04
    assert history.now.due_at == after(30)
    assert history.run(Tick(), after(29)) == []
    [(kind, batch)] = history.run(Tick(), after(30))
    assert kind == "deployment.batch_started"
    assert msgspec.to_builtins(batch) == {
        "deployment_id": DEP,
        "stage": 1,
        "percentage": 80,
        "moved": 4,
        "instances": 5,
        "agent_ids": [],
    }
    assert abs(_share(history.now, "later") - 0.80) < 0.04
    history.run(Tick(), after(60))  # the last batch: every instance, promoted at once
    assert history.types[-2:] == ["deployment.batch_started", "deployment.promoted"]
    assert (history.now.status, history.now.percentage) == ("applying", 100)
    shown = deployment_view.view(history.now)
    assert [(s.percentage, s.moved) for s in shown.stages] == [(40, 2), (80, 4), (100, 5)]
    assert (shown.batch_size, shown.instances, shown.window) == (2, 5, None)


def test_a_rolling_deployment_pauses_sixty_seconds_between_batches_unless_told() -> None:
    history = History()
    history.run(created("rolling", batch_size=1, instances=2))
    assert [s.duration_s for s in history.now.stages] == [60.0, 0.0]
    history.run(Tick(health=Health(samples=40, errors=10)), after(5))
    assert history.now.status == "rolled_back"  # judged between batches like a canary stage


def test_a_cluster_rolls_its_agents_by_batches() -> None:
    history = History()
    agents = ["a1", "a2", "a3"]
    history.run(
        created(
            "rolling", batch_size=2, batch_pause_s=10, cluster="web", agent_ids=agents, instances=3
        )
    )
    assert history.run(Tick(), after(1)) == []
    assert history.types == ["deployment.created", "deployment.batch_started"]
    shown = deployment_view.view(history.now)
    assert [s.agent_ids for s in shown.stages] == [["a1", "a2"], ["a3"]]
    assert shown.cluster == "web"
    history.run(Tick(), after(10))
    assert history.now.status == "applying"


def test_blue_green_stands_beside_switches_at_once_and_keeps_a_rollback_window() -> None:
    history = History()
    history.run(created("blue_green", warmup_s=20, rollback_window_s=120))
    assert history.types == ["deployment.created", "deployment.stage_started"]
    assert history.now.percentage == 0
    assert not any(deployment.on_new_version(history.now, f"c{i}") for i in range(200))
    history.run(Tick(health=Health(samples=0)), after(20))
    assert history.types[-1] == "deployment.switched"
    assert history.now.percentage == 100
    pinned_old = [deployment.on_new_version(history.now, f"c{i}", False) for i in range(50)]
    assert all(pinned_old)  # all traffic at once, conversations already running too
    shown = deployment_view.view(history.now)
    assert shown.window is not None
    assert (shown.window.opens_at, shown.window.closes_at) == (
        "2026-01-01T00:00:20.000000Z",
        "2026-01-01T00:02:20.000000Z",
    )
    history.run(Action(action="rollback", reason="worse"), after(60))  # within the window
    assert (history.now.status, history.now.percentage) == ("rolled_back", 0)
    assert not deployment.on_new_version(history.now, "c1", True)


def test_blue_green_completes_once_the_window_passed() -> None:
    history = History()
    history.run(created("blue_green", rollback_window_s=30))
    assert history.now.due_at == T0  # no warm-up: the switch is due at once
    history.run(Tick(), T0)
    history.run(Tick(), after(29))
    assert history.now.status == "rolling_out"
    history.run(Tick(), after(30))
    assert history.types[-2:] == ["deployment.switched", "deployment.promoted"]
    assert history.now.reason == "every phase passed"


def test_it_rolls_back_past_the_latency_threshold_naming_the_figures() -> None:
    history = History()
    history.run(created(latency_p99_ms=800))
    assert history.run(Tick(health=Health(samples=30, errors=0, p99_ms=790)), after(5)) == []
    slow = Health(samples=30, errors=6, p99_ms=1250)
    history.run(Tick(health=slow), after(10))
    assert history.now.status == "rolled_back"
    assert history.now.reason == (
        "error rate 20.0% over 30 turns is above the threshold of 10.0%; latency p99 1250 ms"
        " over 30 turns is above the threshold of 800 ms"
    )
    metrics = deployment_view.view(history.now).metrics
    assert [(m.version, m.samples, m.errors, m.error_rate, m.p99_ms) for m in metrics] == [
        ("new", 30, 6, 0.2, 1250)
    ]


@pytest.mark.parametrize(
    ("strategy", "rules", "fields"),
    [
        ("rolling", {}, ["body.batch_size"]),
        ("blue_green", {"stages": [Stage(percentage=10)]}, ["body.stages"]),
        (
            "canary",
            {"batch_size": 2, "rollback_window_s": 5},
            ["body.batch_size", "body.rollback_window_s"],
        ),
        ("immediate", {"warmup_s": 1}, ["body.warmup_s"]),
        ("canary", {"cluster": "web", "agent_ids": ["a1"]}, ["body.strategy"]),
    ],
)
def test_parameters_of_another_strategy_are_refused_field_by_field(
    strategy: Strategy, rules: dict[str, object], fields: list[str]
) -> None:
    command = created(strategy, **rules)
    with pytest.raises(ParleyError) as info:
        deployment.decide(None, command, Context(T0))
    assert info.value.code is ErrorCode.VALIDATION_ERROR
    assert [e["field"] for e in info.value.details] == fields  # type: ignore[union-attr]
