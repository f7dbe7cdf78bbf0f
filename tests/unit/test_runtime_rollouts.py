"""The runtime's choice of an agent's definition for each run while a deployment rolls out:
by the stage's weights for a new conversation, the pinned version for one that ran already
(even as the percentage rises, and as another runtime recorded it), the new definition for
all once promoted, none once rolled back; and the version recorded for each."""

from datetime import UTC
from datetime import datetime
from typing import Any

import msgspec
from _builders import stored

from parley.aggregates.agent import Agent
from parley.aggregates.deployment import bucket
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.contracts.runtime import EVENT_TYPES
from parley.contracts.runtime import RunVersion
from parley.runtime.adapters.rollouts import Rollouts

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OLD, NEW = AgentSpec(name="helper", system_prompt="v1"), "v2"
AGENT = Agent(
    id="a1",
    namespace="default",
    spec=OLD,
    state=AgentState.RUNNING,
    version=2,
    created_at=T0,
    updated_at=T0,
)
CONVERSATIONS = [f"c{i}" for i in range(400)]


class Feed:
    """The events the runtime's view reads, folded into one :class:`Rollouts`."""

    def __init__(self) -> None:
        self.rollouts = Rollouts()
        self.versions: dict[str, int] = {}
        self.add("agent-a1", "agent.created", {"agent_id": "a1"})
        self.add("agent-a1", "agent.state_changed", {})

    def add(self, stream: str, event_type: str, data: dict[str, Any]) -> None:
        version = self.versions[stream] = self.versions.get(stream, 0) + 1
        event = stored(event_type, data, stream=stream, version=version, source="/t", time=T0)
        self.rollouts.fold(event)

    def deploy(self, *percentages: int) -> None:
        created = {
            "deployment_id": "d1",
            "agent_id": "a1",
            "spec": {"name": "helper", "system_prompt": NEW},
            "version_label": "prompt-v2",
            "strategy": "canary",
            "stages": [{"percentage": p, "duration_s": 60} for p in percentages],
            "rollback_on_error": True,
            "error_threshold": 0.05,
            "min_samples": 20,
            "from_version": 2,
        }
        self.add("deployment-d1", "deployment.created", created)
        self.stage(0, percentages[0])

    def stage(self, index: int, percentage: int) -> None:
        data = {"deployment_id": "d1", "stage": index, "percentage": percentage}
        self.add("deployment-d1", "deployment.stage_started", data)

    def on_new(self, conversation: str) -> bool:
        routed = self.rollouts.route(AGENT, conversation)
        assert (routed.agent.spec.system_prompt == NEW) == (routed.version.deployment_id == "d1")
        return routed.version.deployment_id == "d1"


def test_without_a_deployment_a_run_uses_the_current_definition_and_its_number() -> None:
    feed = Feed()
    routed = feed.rollouts.route(AGENT, "c1")
    assert routed.agent is AGENT
    assert routed.version == RunVersion(agent_version=1)


def test_new_conversations_follow_the_stage_weights_by_their_bucket() -> None:
    feed = Feed()
    feed.deploy(10, 50)
    chosen = [feed.on_new(c) for c in CONVERSATIONS]
    assert chosen == [bucket(c) < 10 for c in CONVERSATIONS]
    routed = feed.rollouts.route(AGENT, next(c for c in CONVERSATIONS if bucket(c) < 10))
    assert routed.version == RunVersion(
        agent_version=2, version_label="prompt-v2", deployment_id="d1"
    )


def test_a_conversation_keeps_its_version_as_the_percentage_rises() -> None:
    feed = Feed()
    feed.deploy(10, 50)
    before = [feed.on_new(c) for c in CONVERSATIONS]
    feed.stage(1, 50)
    assert [feed.on_new(c) for c in CONVERSATIONS] == before
    assert any(bucket(c) < 50 and not new for c, new in zip(CONVERSATIONS, before, strict=True))


def test_a_pin_recorded_by_another_runtime_is_kept() -> None:
    feed = Feed()
    feed.deploy(10, 50)
    low = next(c for c in CONVERSATIONS if bucket(c) < 10)
    high = next(c for c in CONVERSATIONS if 10 <= bucket(c) < 50)
    # another runtime ran `high` on the new version and `low` on the old one (its own view)
    feed.add(
        f"session-{high}",
        "turn.started",
        {"session_id": high, "agent_id": "a1", "deployment_id": "d1"},
    )
    feed.add(f"session-{low}", "turn.started", {"session_id": low, "agent_id": "a1"})
    assert (feed.on_new(high), feed.on_new(low)) == (True, False)


def test_once_promoted_every_run_is_new_and_once_rolled_back_none_is() -> None:
    feed = Feed()
    feed.deploy(10)
    old = [c for c in CONVERSATIONS if not feed.on_new(c)]
    feed.add("deployment-d1", "deployment.promoted", {"deployment_id": "d1"})
    assert all(feed.on_new(c) for c in old)

    rolled = Feed()
    rolled.deploy(10)
    new = [c for c in CONVERSATIONS if rolled.on_new(c)]
    back = {"deployment_id": "d1", "reason": "worse"}
    rolled.add("deployment-d1", "deployment.rolled_back", back)
    assert new and not any(rolled.on_new(c) for c in new)


def test_a_completed_deployment_labels_the_definition_it_made() -> None:
    feed = Feed()
    feed.deploy(100)
    feed.add("deployment-d1", "deployment.promoted", {"deployment_id": "d1"})
    feed.add("agent-a1", "agent.updated", {"agent_id": "a1"})
    feed.add("deployment-d1", "deployment.completed", {"deployment_id": "d1", "agent_version": 3})
    assert feed.rollouts.route(AGENT, "c1").version == RunVersion(
        agent_version=2, version_label="prompt-v2"
    )
    feed.add("agent-a1", "agent.updated", {"agent_id": "a1"})  # a later PATCH: no label
    assert feed.rollouts.route(AGENT, "c1").version == RunVersion(agent_version=3)


def test_runs_recorded_before_versions_existed_still_decode_with_none() -> None:
    old = {
        "turn.started": {"turn_id": "t1", "session_id": "s1", "agent_id": "a1", "message": "hi"},
        "turn.completed": {"run_id": "t1", "outcome": "completed"},
        "execution.started": {"execution_id": "e1", "agent_id": "a1", "attempt": 1, "worker": "w"},
    }
    for event_type, data in old.items():
        decoded = msgspec.convert(data, EVENT_TYPES[event_type])
        assert isinstance(decoded, RunVersion)
        assert (decoded.agent_version, decoded.version_label, decoded.deployment_id) == (
            None,
            None,
            None,
        )
