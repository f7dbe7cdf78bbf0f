"""The task and group-run aggregates: given events, when a command, then events and mail."""

import itertools
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from award_bids import BIDS
from award_bids import WINNERS

from parley.aggregates import grouprun
from parley.aggregates.decision import Context
from parley.aggregates.grouprun import RunReply
from parley.aggregates.grouprun import RunTick
from parley.aggregates.grouprun import Start
from parley.aggregates.grouprun import split
from parley.aggregates.task import GRACE
from parley.aggregates.task import Bid
from parley.aggregates.task import Cancel
from parley.aggregates.task import Create
from parley.aggregates.task import Distribute
from parley.aggregates.task import Reply
from parley.aggregates.task import Task
from parley.aggregates.task import Tick
from parley.aggregates.task import Undeliverable
from parley.aggregates.task import decide
from parley.aggregates.task import evolve
from parley.aggregates.task import pending_mail
from parley.aggregates.task import rank
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import Budget
from parley.contracts.tasks import EVENT_TYPES
from parley.contracts.tasks import RUN_EVENT_TYPES
from parley.contracts.tasks import Proposal
from parley.contracts.tasks import TaskSpec

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class World:
    """A task stream in memory: decide, then fold the decision's events (as the shell does)."""

    def __init__(self, spec: TaskSpec | None = None, **kw: Any) -> None:
        self.ids = (f"m{i}" for i in itertools.count())
        self.state: Task | None = None
        self.version = 0
        self.events: list[tuple[str, Any]] = []
        self.mail: list[Any] = []
        self.now = T0
        self.when(Create(task_id="t1", spec=spec or TaskSpec(name="job", **kw)))

    def mint(self) -> str:
        return next(self.ids)

    def when(self, command: Any, *, at: datetime | None = None) -> list[str]:
        now = at or self.now
        decision = decide(self.state, command, Context(now, self.mint))
        for kind, payload in decision.events:
            self.version += 1
            new = NewEvent(type=kind, subject="t1", data=msgspec.to_builtins(payload), time=now)
            self.state = evolve(
                self.state, Event.record(new, stream="task-t1", version=self.version)
            )
            self.events.append((kind, payload))
        self.mail = list(decision.effects)
        return [kind for kind, _ in decision.events]

    def announce(self, agents: str, strategy: str = "best_bid", wait: float = 5.0) -> None:
        self.when(Distribute(candidates=tuple(agents), strategy=strategy, max_wait_seconds=wait))

    def propose(self, agent: str, cost: float, time: float, confidence: float, **kw: Any):
        content = {"cost": cost, "estimated_time_s": time, "confidence": confidence}
        return self.when(
            Reply(
                performative="propose",
                sender=agent,
                message_id=f"p-{agent}",
                reply_with=f"rw-{agent}",
                content=content,
            ),
            **kw,
        )

    def refuse(self, agent: str, reason: str = "busy"):
        return self.when(
            Reply(
                performative="refuse",
                sender=agent,
                message_id=f"r-{agent}",
                content={"reason": reason},
            )
        )

    def answer(self, agent: str, performative: str, content: Any):
        return self.when(
            Reply(performative=performative, sender=agent, message_id=f"a-{agent}", content=content)
        )

    @property
    def task(self) -> Task:
        assert self.state is not None
        return self.state


# --- create and distribute --------------------------------------------------------------


def test_create_records_the_task_and_a_second_create_of_the_id_is_refused() -> None:
    world = World()
    assert world.task.status == "created" and world.task.spec.name == "job"
    with pytest.raises(ParleyError) as refused:
        world.when(Create(task_id="t1", spec=TaskSpec(name="again")))
    assert refused.value.code is ErrorCode.CONCURRENCY_CONFLICT


def test_commands_on_a_missing_task_are_task_not_found() -> None:
    for command in (
        Tick(),
        Cancel(),
        Distribute(candidates=("a",), strategy="fastest", max_wait_seconds=1),
    ):
        with pytest.raises(ParleyError) as refused:
            decide(None, command, Context(T0, lambda: "x"))
        assert refused.value.code is ErrorCode.TASK_NOT_FOUND


def test_distribute_sends_one_cfp_to_every_candidate_with_the_deadline() -> None:
    world = World(description="do it", data={"n": 1})
    assert world.when(
        Distribute(candidates=("a", "b", "a"), strategy="fastest", max_wait_seconds=3)
    ) == ["task.cfp_sent"]
    (cfp,) = world.mail
    assert cfp.performative == "cfp" and cfp.receivers == ("a", "b")
    assert cfp.reply_by == T0 + timedelta(seconds=3)
    assert cfp.content == {
        "task_id": "t1",
        "name": "job",
        "description": "do it",
        "data": {"n": 1},
        "requirements": None,
    }
    task = world.task
    assert task.status == "announced" and task.strategy == "fastest"
    assert task.deadline == T0 + timedelta(seconds=3) + GRACE
    assert pending_mail(task) == [cfp]


def test_distribute_without_candidates_fails_the_task_with_the_reason() -> None:
    world = World()
    assert world.when(
        Distribute(
            candidates=(),
            strategy="best_bid",
            max_wait_seconds=1,
            no_candidates_reason="nobody can",
        )
    ) == ["task.failed"]
    assert world.task.status == "failed" and world.task.reason == "nobody can"


def test_only_a_created_task_can_be_distributed() -> None:
    world = World()
    world.announce("ab")
    with pytest.raises(ParleyError) as refused:
        world.announce("ab")
    assert refused.value.code is ErrorCode.INVALID_STATE_TRANSITION


# --- proposals and the close of the round -----------------------------------------------


def test_proposals_are_recorded_until_every_candidate_has_answered_then_awarded() -> None:
    world = World()
    world.announce("abc")
    assert world.propose("a", 5, 5, 0.5) == ["task.proposal_received"]
    assert world.refuse("b") == ["task.refused"]
    assert world.mail == []
    assert world.propose("c", 1, 1, 0.9) == [
        "task.proposal_received",
        "task.awarded",
        "task.rejected",
    ]
    task = world.task
    assert task.status == "awarded" and task.contractor == "c" and task.round == 1
    accept, reject = world.mail
    assert accept.performative == "accept-proposal" and accept.receivers == ("c",)
    assert accept.in_reply_to == "rw-c" and accept.content["name"] == "job"
    assert reject.performative == "reject-proposal" and reject.receivers == ("a",)
    assert reject.content["reason"] == "lost" and reject.in_reply_to == "rw-a"
    assert task.rejected == {"a": "lost"}


def test_a_second_or_redelivered_answer_of_one_agent_changes_nothing() -> None:
    world = World()
    world.announce("ab")
    world.propose("a", 1, 1, 1)
    assert world.propose("a", 0, 0, 1) == []
    assert world.refuse("a") == []
    assert world.task.bids["a"].proposal.cost == 1


def test_answers_from_agents_that_were_not_asked_are_ignored() -> None:
    world = World()
    world.announce("a")
    assert world.propose("z", 1, 1, 1) == []
    assert world.refuse("z") == []


def test_an_invalid_proposal_is_rejected_as_invalid() -> None:
    world = World()
    world.announce("ab")
    assert world.answer("a", "propose", {"cost": -1}) == ["task.rejected"]
    assert world.task.rejected == {"a": "invalid"}
    assert world.mail[0].performative == "reject-proposal"


def test_the_deadline_closes_the_round_with_the_proposals_so_far() -> None:
    world = World()
    world.announce("abc", wait=2)
    world.propose("a", 3, 3, 0.5)
    assert world.when(Tick(), at=T0 + timedelta(seconds=2)) == []  # within the grace
    assert world.when(Tick(), at=T0 + timedelta(seconds=2) + GRACE) == ["task.awarded"]
    assert world.task.contractor == "a"


def test_a_late_proposal_is_rejected_late_with_a_reject_proposal() -> None:
    world = World()
    world.announce("ab", wait=1)
    world.propose("a", 1, 1, 1)
    world.when(Tick(), at=T0 + timedelta(seconds=2))
    assert world.propose("b", 0, 0, 1, at=T0 + timedelta(seconds=3)) == ["task.rejected"]
    assert world.task.rejected == {"b": "late"} and world.task.contractor == "a"
    (reject,) = world.mail
    assert reject.content == {"task_id": "t1", "reason": "late"}


def test_a_proposal_sent_before_reply_by_counts_even_if_it_arrives_in_the_grace() -> None:
    world = World()
    world.announce("ab", wait=1)
    reply = Reply(
        performative="propose",
        sender="a",
        message_id="p",
        sent_at=T0,
        content={"cost": 1, "estimated_time_s": 1, "confidence": 1},
    )
    assert world.when(reply, at=T0 + timedelta(seconds=1, milliseconds=100)) == [
        "task.proposal_received"
    ]


def test_all_refused_fails_the_task_with_every_reason() -> None:
    world = World()
    world.announce("ab")
    world.refuse("a", "too busy")
    assert world.refuse("b", "no skill") == ["task.refused", "task.failed"]
    task = world.task
    assert task.status == "failed" and task.reason == "every candidate refused"
    assert task.refusals == {"a": "too busy", "b": "no skill"}


def test_no_proposal_before_the_deadline_fails_the_task() -> None:
    world = World()
    world.announce("ab", wait=1)
    world.refuse("a")
    assert world.when(Tick(), at=T0 + timedelta(seconds=5)) == ["task.failed"]
    assert world.task.reason == "no proposal before the deadline"
    assert world.task.refusals == {"a": "busy"}


def test_undeliverable_candidates_count_as_refusals() -> None:
    world = World()
    world.announce("ab")
    world.propose("a", 1, 1, 1)
    assert world.when(Undeliverable(reasons={"b": "AGENT_NOT_RUNNING: paused"})) == [
        "task.refused",
        "task.awarded",
    ]
    assert world.task.refusals["b"].startswith("not delivered")


# --- strategies -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(WINNERS))
def test_each_strategy_awards_its_best_proposal(strategy: str) -> None:
    world = World()
    world.announce(tuple(BIDS), strategy=strategy)
    for agent, (cost, time, confidence) in BIDS.items():
        world.propose(agent, cost, time, confidence)
    assert world.task.contractor == WINNERS[strategy]
    assert sorted(world.task.rejected) == sorted(set(BIDS) - {WINNERS[strategy]})


def _bids(*specs: tuple[str, float, float, float]) -> list[Bid]:
    return [
        Bid(
            agent_id=a,
            proposal=Proposal(cost=c, estimated_time_s=t, confidence=f),
            message_id=a,
            reply_with=None,
            order=i,
        )
        for i, (a, c, t, f) in enumerate(specs)
    ]


def test_best_bid_is_the_documented_weighted_score() -> None:
    ranked = rank(_bids(("a", 2, 4, 0.5), ("b", 4, 2, 1.0)), "best_bid")
    scores = {bid.agent_id: value for bid, value in ranked}
    assert scores["a"] == pytest.approx(0.4 * 1 + 0.3 * 0.5 + 0.3 * 0.5)
    assert scores["b"] == pytest.approx(0.4 * 0.5 + 0.3 * 1 + 0.3 * 1.0)
    assert [bid.agent_id for bid, _ in ranked] == ["b", "a"]


def test_zero_cost_and_time_score_fully() -> None:
    ((bid, value),) = rank(_bids(("a", 0, 0, 1)), "best_bid")
    assert value == pytest.approx(1.0)


@pytest.mark.parametrize("strategy", ["best_bid", "lowest_cost", "fastest", "highest_confidence"])
def test_equal_scores_go_to_the_earliest_proposal(strategy: str) -> None:
    ranked = rank(_bids(("early", 1, 1, 0.5), ("late", 1, 1, 0.5))[::-1], strategy)
    assert ranked[0][0].agent_id == "early"


# --- the contractor ---------------------------------------------------------------------


def _awarded(strategy: str = "lowest_cost") -> World:
    world = World(timeout_seconds=10)
    world.announce("abc", strategy=strategy)
    world.propose("a", 1, 1, 1)
    world.propose("b", 2, 1, 1)
    world.propose("c", 3, 1, 1)
    assert world.task.contractor == "a"
    return world


def test_the_winners_inform_completes_the_task_with_its_result() -> None:
    world = _awarded()
    assert world.answer("a", "inform", {"result": "done"}) == ["task.completed"]
    assert world.task.status == "completed" and world.task.result == "done"


def test_progress_before_the_result_is_recorded() -> None:
    world = _awarded()
    assert world.answer("a", "inform", {"progress": 0.65}) == ["task.progress"]
    assert world.task.progress == pytest.approx(65)
    assert world.task.status == "awarded"


def test_a_failure_re_awards_in_order_and_the_last_failure_fails_the_task() -> None:
    world = _awarded()
    assert world.answer("a", "failure", {"reason": "boom"}) == ["task.awarded"]
    assert world.task.contractor == "b" and world.task.round == 2
    assert world.mail[0].performative == "accept-proposal" and world.mail[0].receivers == ("b",)
    assert world.answer("a", "inform", {"result": "too late"}) == []  # replaced: ignored
    assert world.answer("b", "failure", {"reason": "bang"}) == ["task.awarded"]
    assert world.task.contractor == "c" and world.task.round == 3
    assert world.answer("c", "failure", {}) == ["task.failed"]
    task = world.task
    assert task.status == "failed" and task.reason == "every awarded agent failed"
    assert task.failures == {"a": "boom", "b": "bang", "c": "failure"}


def test_a_contractor_out_of_time_is_cancelled_and_the_task_re_awarded() -> None:
    world = _awarded()
    assert world.when(Tick(), at=T0 + timedelta(seconds=9)) == []
    assert world.when(Tick(), at=T0 + timedelta(seconds=10)) == ["task.awarded"]
    cancel, accept = world.mail
    assert cancel.performative == "cancel" and cancel.receivers == ("a",)
    assert accept.receivers == ("b",)
    assert world.task.failures == {"a": "no result within 10s"}


def test_pending_mail_of_an_awarded_task_is_its_accept_and_rejects() -> None:
    world = _awarded()
    performatives = sorted(m.performative.value for m in pending_mail(world.task))
    assert performatives == ["accept-proposal", "reject-proposal", "reject-proposal"]


# --- exactly one outcome ----------------------------------------------------------------


def test_a_second_decider_on_the_same_state_after_the_award_decides_nothing() -> None:
    world = World()
    world.announce("ab", wait=1)
    world.propose("a", 1, 1, 1)
    late = T0 + timedelta(seconds=5)
    assert world.when(Tick(), at=late) == ["task.awarded"]
    # The other timer (another process, or this one restarted) reloads and decides again.
    assert world.when(Tick(), at=late) == []
    assert [k for k, _ in world.events].count("task.awarded") == 1


def test_the_round_ends_once_whatever_the_order_of_answers_and_ticks() -> None:
    steps = ["a", "b", "tick"]
    for order in itertools.permutations(steps):
        world = World()
        world.announce("abc", wait=1)
        for step in order:
            if step == "tick":
                world.when(Tick(), at=T0 + timedelta(seconds=2))
            else:
                world.propose(step, 1, 1, 1, at=T0)
        world.when(Tick(), at=T0 + timedelta(seconds=3))
        kinds = [k for k, _ in world.events]
        assert kinds.count("task.awarded") + kinds.count("task.failed") == 1, order


# --- cancel -----------------------------------------------------------------------------


def test_cancel_of_an_awarded_task_sends_the_contractor_a_cancel() -> None:
    world = _awarded()
    assert world.when(Cancel(reason="changed my mind")) == ["task.cancelled"]
    (cancel,) = world.mail
    assert cancel.performative == "cancel" and cancel.receivers == ("a",)
    assert world.task.status == "cancelled" and world.task.reason == "changed my mind"


def test_cancel_of_an_announced_task_sends_nothing_and_a_finished_one_refuses() -> None:
    world = World()
    world.announce("a")
    assert world.when(Cancel()) == ["task.cancelled"] and world.mail == []
    with pytest.raises(ParleyError) as refused:
        world.when(Cancel())
    assert refused.value.code is ErrorCode.INVALID_STATE_TRANSITION
    assert world.answer("a", "propose", {"cost": 1, "estimated_time_s": 1, "confidence": 1}) == [
        "task.rejected"
    ]


def test_every_event_decide_emits_has_a_registered_type() -> None:
    world = _awarded()
    world.answer("a", "failure", {})
    world.answer("b", "inform", {"result": 1})
    assert {kind for kind, _ in world.events} <= set(EVENT_TYPES)


# --- group runs -------------------------------------------------------------------------


class RunWorld:
    def __init__(self, strategy: str, agents: str = "abc", value: Any = "go", **kw: Any):
        self.ids = (f"m{i}" for i in itertools.count())
        self.state: grouprun.Run | None = None
        self.version = 0
        self.kinds: list[str] = []
        self.mail: list[Any] = []
        self.when(
            Start(
                run_id="r1",
                cluster="c",
                strategy=strategy,
                agent_ids=tuple(agents),
                input=value,
                **kw,
            )
        )

    def when(self, command: Any, at: datetime = T0) -> list[str]:
        decision = grouprun.decide(self.state, command, Context(at, lambda: next(self.ids)))
        for kind, payload in decision.events:
            self.version += 1
            new = NewEvent(type=kind, subject="r1", data=msgspec.to_builtins(payload), time=T0)
            self.state = grouprun.evolve(
                self.state, Event.record(new, stream="grouprun-r1", version=self.version)
            )
            self.kinds.append(kind)
        self.mail = list(decision.effects)
        return [kind for kind, _ in decision.events]

    def reply(self, agent: str, performative: str = "inform", content: Any = None):
        assert self.state is not None
        request = next(r for r in self.state.outstanding if r.agent_id == agent)
        return self.when(
            RunReply(
                performative=performative,
                sender=agent,
                in_reply_to=request.message_id,
                content={"result": f"{agent}!"} if content is None else content,
            )
        )

    @property
    def run(self) -> grouprun.Run:
        assert self.state is not None
        return self.state


def test_parallel_asks_everyone_and_collects_every_output() -> None:
    world = RunWorld("parallel")
    assert [m.receivers for m in world.mail] == [("a",), ("b",), ("c",)]
    assert all(m.performative == "request" and m.content == "go" for m in world.mail)
    world.reply("a")
    world.reply("b", "failure", {"reason": "nope"})
    assert world.reply("c") == ["grouprun.agent_result", "grouprun.completed"]
    assert world.run.status == "completed" and world.run.result == {"a": "a!", "c": "c!"}


def test_pipeline_feeds_each_output_to_the_next_agent() -> None:
    world = RunWorld("pipeline")
    assert [m.receivers for m in world.mail] == [("a",)]
    world.reply("a", content={"result": "one"})
    assert world.mail[0].receivers == ("b",) and world.mail[0].content == "one"
    world.reply("b", content={"result": "two"})
    assert world.mail[0].receivers == ("c",) and world.mail[0].content == "two"
    assert world.reply("c", content={"result": "three"})[-1] == "grouprun.completed"
    assert world.run.result == "three"


def test_pipeline_stops_at_the_first_failure() -> None:
    world = RunWorld("pipeline")
    assert world.reply("a", "failure", {"reason": "x"})[-1] == "grouprun.failed"
    assert world.run.error == "a: x"


def test_map_reduce_splits_a_list_over_the_mappers_and_reduces_their_outputs() -> None:
    world = RunWorld("map-reduce", agents="abcd", value=[1, 2, 3, 4, 5])
    assert [(m.receivers, m.content) for m in world.mail] == [
        (("a",), [1, 2]),
        (("b",), [3, 4]),
        (("c",), [5]),
    ]
    world.reply("a", content={"result": "A"})
    world.reply("b", content={"result": "B"})
    world.reply("c", content={"result": "C"})
    (reduce,) = world.mail
    assert reduce.receivers == ("d",) and reduce.content == ["A", "B", "C"]
    assert world.reply("d", content={"result": "ABC"})[-1] == "grouprun.completed"
    assert world.run.result == "ABC"


def test_map_reduce_gives_a_non_list_input_whole_to_every_mapper() -> None:
    world = RunWorld("map-reduce", value="text")
    assert [(m.receivers, m.content) for m in world.mail] == [(("a",), "text"), (("b",), "text")]
    parts = split([1], 3)
    assert parts[0] == [1] and len(parts) == 3


def test_race_takes_the_first_inform_and_cancels_the_rest() -> None:
    world = RunWorld("race")
    world.reply("b", "failure", {"reason": "x"})
    assert world.reply("c")[-1] == "grouprun.completed"
    assert world.run.winner == "c" and world.run.result == "c!"
    assert world.run.cancelled == ("a",)
    assert [(m.performative, m.receivers) for m in world.mail] == [("cancel", ("a",))]
    assert world.reply_late("a") == []


def _reply_late(self: RunWorld, agent: str) -> list[str]:
    return self.when(RunReply(performative="inform", sender=agent, content={"result": "x"}))


RunWorld.reply_late = _reply_late  # type: ignore[attr-defined]


@pytest.mark.parametrize(("strategy", "agents"), [("race", "a"), ("map-reduce", "ab")])
def test_strategies_refuse_too_few_agents(strategy: str, agents: str) -> None:
    with pytest.raises(ParleyError) as refused:
        RunWorld(strategy, agents=agents)
    assert refused.value.code is ErrorCode.VALIDATION_ERROR


def test_a_run_past_its_timeout_fails_and_cancels_who_is_still_working() -> None:
    world = RunWorld("parallel", timeout_seconds=5)
    world.reply("a")
    assert world.when(RunTick(), at=T0 + timedelta(seconds=4)) == []
    assert world.when(RunTick(), at=T0 + timedelta(seconds=5)) == ["grouprun.failed"]
    assert world.run.cancelled == ("b", "c") and world.run.error == "timed out after 5s"


def test_reported_usage_past_the_budget_fails_the_run() -> None:
    world = RunWorld("parallel", budget=Budget(max_tokens=100))
    world.reply("a", content={"result": "x", "usage": {"input_tokens": 60, "output_tokens": 50}})
    assert world.run.status == "failed" and world.run.error.startswith("budget exceeded")


def test_a_run_warns_once_at_80_percent_of_its_budget() -> None:
    world = RunWorld("parallel", budget=Budget(max_tokens=100))
    world.reply("a", content={"result": "x", "usage": {"tokens": 50}})
    assert "grouprun.budget_warning" not in world.kinds
    world.reply("b", content={"result": "x", "usage": {"tokens": 35}})
    assert world.kinds.count("grouprun.budget_warning") == 1
    world.reply("c", content={"result": "x", "usage": {"tokens": 5}})
    assert world.kinds.count("grouprun.budget_warning") == 1
    assert world.run.status == "completed"


def test_run_events_are_registered() -> None:
    world = RunWorld("race")
    world.reply("a")
    assert set(world.kinds) <= set(RUN_EVENT_TYPES)
