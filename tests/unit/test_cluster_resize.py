"""The cluster aggregate's resize: how many agents a cluster holds, decided and folded."""

from datetime import timedelta

import pytest
from _builders import NOW
from _builders import NS
from test_cluster_domain import DELETE
from test_cluster_domain import NAME
from test_cluster_domain import create
from test_cluster_domain import given
from test_cluster_domain import record
from test_cluster_domain import refused
from test_cluster_domain import run
from test_cluster_domain import scale

from parley.aggregates.cluster import SCALE_TIMEOUT
from parley.aggregates.cluster import Cluster
from parley.aggregates.cluster import EndResize
from parley.aggregates.cluster import agent_specs
from parley.aggregates.cluster import decide
from parley.aggregates.decision import Context
from parley.contracts.clusters import EVENT_TYPES
from parley.contracts.clusters import ClusterCommand
from parley.contracts.clusters import ClusterResized
from parley.contracts.clusters import ClusterResizeFailed
from parley.contracts.clusters import ClusterResizeStarted
from parley.contracts.clusters import ClusterView
from parley.contracts.clusters import ResizeCluster
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.controllers.cluster_scale import check_quota

TEMPLATE = {"template": {"spec": {"name": "w"}, "replicas": 2}}


def resize(target: int) -> ResizeCluster:
    return ResizeCluster(namespace=NS, name=NAME, target_agents=target)


def templated(**policy: object) -> Cluster | None:
    spec = {**TEMPLATE, "resource_policy": policy} if policy else TEMPLATE
    return given(create(**spec))


def closed(
    state: Cluster | None, target: int, ids: list[str], error: ErrorBody | None = None
) -> Cluster | None:
    """The state after a resize to ``target`` opened and closed with members ``ids``."""
    opened = run(state, resize(target))
    assert state is not None
    started = ClusterResizeStarted(name=NAME, from_agents=len(state.agent_ids), to_agents=target)
    end = EndResize(started=started, agent_ids=ids, error=error)
    return record(opened, decide(opened, end, Context(NOW)).events, NOW)


def test_a_resize_opens_a_window_from_the_current_count_to_the_target() -> None:
    state = templated()
    assert decide(state, resize(5), Context(NOW)).events == [
        ("cluster.resize_started", ClusterResizeStarted(name=NAME, from_agents=2, to_agents=5))
    ]
    opened = run(state, resize(5))
    assert opened is not None and opened.scaling is not None
    assert opened.scaling.target_agents == 5 and opened.scaling.started_at == NOW


def test_a_resize_to_the_current_count_decides_nothing() -> None:
    assert decide(templated(), resize(2), Context(NOW)).events == []


def test_growing_records_the_new_members_and_the_template_follows_the_count() -> None:
    grown = closed(templated(), 5, ["id-0", "id-1", "n-2", "n-3", "n-4"])
    assert grown is not None and grown.scaling is None
    assert grown.agent_ids == ("id-0", "id-1", "n-2", "n-3", "n-4")
    assert [s.name for s in agent_specs(grown.manifest)] == [f"w-{k}" for k in range(1, 6)]
    assert grown.agent_id("w-4") == "n-3"


def test_shrinking_keeps_the_oldest_members() -> None:
    shrunk = closed(templated(), 1, ["id-0"])
    assert shrunk is not None and shrunk.agent_ids == ("id-0",)
    assert shrunk.manifest.spec.template is not None
    assert shrunk.manifest.spec.template.replicas == 1 and shrunk.agent_id("w-2") is None


def test_a_failed_resize_records_the_members_left_and_closes_the_window() -> None:
    state = given(create(template={"spec": {"name": "w"}, "replicas": 4}))
    error = ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="boom")
    opened = run(state, resize(1))
    started = ClusterResizeStarted(name=NAME, from_agents=4, to_agents=1)
    [(event_type, payload)] = decide(
        opened, EndResize(started=started, agent_ids=["id-0", "id-1"], error=error), Context(NOW)
    ).events
    assert (event_type, payload) == (
        "cluster.resize_failed",
        ClusterResizeFailed(
            name=NAME, from_agents=4, to_agents=1, agent_ids=["id-0", "id-1"], error=error
        ),
    )
    after = closed(state, 1, ["id-0", "id-1"], error)
    assert after is not None and after.scaling is None and after.agent_ids == ("id-0", "id-1")


def test_explicit_agents_can_shrink_but_not_grow() -> None:
    explicit = given(create())
    error = refused(resize(3), explicit)
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["errors"][0]["field"] == "target_agents"
    assert "no template" in error.message
    shrunk = closed(explicit, 1, ["id-0"])
    assert shrunk is not None and [a.name for a in shrunk.manifest.spec.agents] == ["triage"]


def test_a_target_over_max_concurrent_agents_is_refused() -> None:
    error = refused(resize(6), templated(max_concurrent_agents=5))
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert "max_concurrent_agents=5" in error.details["errors"][0]["message"]


@pytest.mark.parametrize("command", [resize(3), scale("w-1", 2), DELETE])
def test_while_a_resize_is_in_progress_other_changes_are_refused(
    command: ClusterCommand,
) -> None:
    state = run(templated(), resize(4))
    error = refused(command, state, NOW + SCALE_TIMEOUT - timedelta(seconds=1))
    assert error.code is ErrorCode.SCALING_IN_PROGRESS
    assert error.details == {"name": NAME, "target_agents": 4}


def test_closing_a_resize_window_that_is_no_longer_open_decides_nothing() -> None:
    started = ClusterResizeStarted(name=NAME, from_agents=2, to_agents=4)
    end = EndResize(started=started, agent_ids=["x"])
    assert decide(templated(), end, Context(NOW)).events == []
    taken_over = run(run(templated(), resize(4)), resize(3), at=NOW + SCALE_TIMEOUT)
    assert decide(taken_over, end, Context(NOW)).events == []


def test_resize_events_are_known_types() -> None:
    opened = run(templated(), resize(3))
    started = ClusterResizeStarted(name=NAME, from_agents=2, to_agents=3)
    [(event_type, payload)] = decide(
        opened, EndResize(started=started, agent_ids=["a", "b", "c"]), Context(NOW)
    ).events
    assert type(payload) is EVENT_TYPES[event_type] is ClusterResized


def _view(agents: int) -> ClusterView:
    state = given(create(template={"spec": {"name": "w"}, "replicas": agents}))
    assert state is not None
    return ClusterView(
        name=NAME,
        namespace=NS,
        manifest=state.manifest,
        agent_ids=list(state.agent_ids),
        state="active",
        version=1,
        created_at="",
        updated_at="",
    )


def test_growing_past_the_namespace_quota_is_refused_and_shrinking_never_is() -> None:
    view = _view(2)
    check_quota(view, 5, held=7, limit=10)  # 3 more: exactly the quota
    with pytest.raises(ParleyError) as info:
        check_quota(view, 6, held=7, limit=10)
    assert info.value.code is ErrorCode.QUOTA_EXCEEDED
    assert info.value.details == {"quota": "agents", "limit": 10, "namespace": NS}
    check_quota(view, 1, held=50, limit=10)  # over it already, but shrinking
    check_quota(view, 900, held=50, limit=0)  # no quota
