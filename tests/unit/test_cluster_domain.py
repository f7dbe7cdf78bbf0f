"""The cluster aggregate: given events, when a command, then events or a refusal; the fold."""

from datetime import datetime
from datetime import timedelta
from functools import reduce
from typing import Any

import msgspec
import pytest
from _builders import NOW
from _builders import NS
from _builders import folded_by_registry
from _builders import recorded_by_registry
from _builders import refusal

from parley.aggregates.agent import CorruptStreamError
from parley.aggregates.cluster import SCALE_TIMEOUT
from parley.aggregates.cluster import Cluster
from parley.aggregates.cluster import Command
from parley.aggregates.cluster import CreateWithAgents
from parley.aggregates.cluster import EndScale
from parley.aggregates.cluster import agent_specs
from parley.aggregates.cluster import decide
from parley.aggregates.cluster import evolve
from parley.aggregates.cluster import manifest_problems
from parley.aggregates.decision import Context
from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.clusters import EVENT_TYPES
from parley.contracts.clusters import ClusterCommand
from parley.contracts.clusters import ClusterCreated
from parley.contracts.clusters import ClusterDeleted
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import ClusterScaled
from parley.contracts.clusters import ClusterScaleFailed
from parley.contracts.clusters import ClusterScaleStarted
from parley.contracts.clusters import ClusterStateChanged
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ResourcePolicy
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.clusters import cluster_stream
from parley.contracts.clusters import duration_seconds
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError

NAME = "support"


def manifest(**spec: Any) -> ClusterManifest:
    body = spec or {"agents": [{"name": "triage"}, {"name": "writer"}]}
    return msgspec.convert(
        {
            "apiVersion": "parley.dev/v1",
            "kind": "AgentCluster",
            "metadata": {"name": NAME, "namespace": NS, "labels": {"team": "a"}},
            "spec": body,
        },
        ClusterManifest,
    )


def create(**spec: Any) -> CreateCluster:
    return CreateCluster(namespace=NS, manifest=manifest(**spec))


def ids_for(command: CreateCluster) -> list[str]:
    return [f"id-{i}" for i in range(len(agent_specs(command.manifest)))]


def with_ids(command: ClusterCommand, ids: Any) -> Command:
    """A create as the decider takes it: with the ids of its agents."""
    if isinstance(command, CreateCluster):
        return CreateWithAgents(command=command, agent_ids=list(ids))
    return command


PAUSE = UpdateCluster(namespace=NS, name=NAME, action="pause")
RESUME = UpdateCluster(namespace=NS, name=NAME, action="resume")
DELETE = DeleteCluster(namespace=NS, name=NAME)


def scale(agent: str = "writer", instances: int = 3) -> ScaleCluster:
    return ScaleCluster(namespace=NS, name=NAME, agent_name=agent, instances=instances)


def record(
    state: Cluster | None, decided: list[tuple[str, msgspec.Struct]], at: datetime
) -> Cluster | None:
    return folded_by_registry(
        evolve, state, decided, stream=cluster_stream(NS, NAME), subject=NAME, time=at
    )


def run(state: Cluster | None, command: ClusterCommand, at: datetime = NOW) -> Cluster | None:
    """Decide, then fold the decided events as the store would record them."""
    ids = ids_for(command) if isinstance(command, CreateCluster) else ()
    return record(state, decide(state, with_ids(command, ids), Context(at)).events, at)


def given(*commands: ClusterCommand) -> Cluster | None:
    return reduce(run, commands, None)


def refused(command: ClusterCommand, state: Cluster | None, at: datetime = NOW) -> ParleyError:
    ids = ids_for(command) if isinstance(command, CreateCluster) else ()
    return refusal(decide, state, with_ids(command, ids), Context(at))


# --- create --------------------------------------------------------------------------------


def test_creating_a_cluster_records_its_manifest_and_agent_ids() -> None:
    command = create()
    assert decide(None, with_ids(command, ["a", "b"]), Context(NOW)).events == [
        (
            "cluster.created",
            ClusterCreated(name=NAME, manifest=command.manifest, agent_ids=["a", "b"]),
        )
    ]
    state = given(command)
    assert state is not None and state.state == "active" and state.version == 1
    assert state.agent_ids == ("id-0", "id-1") and state.namespace == NS and state.scaling is None


def test_a_template_expands_to_numbered_replicas_labelled_with_the_cluster() -> None:
    specs = agent_specs(
        manifest(
            template={"spec": {"name": "worker", "labels": {"team": "b"}}, "replicas": 3},
            budget={"max_tokens": 1000},
        )  # fmt: skip
    )
    assert [s.name for s in specs] == ["worker-1", "worker-2", "worker-3"]
    assert all(s.labels == {"team": "b", CLUSTER_LABEL: NAME} for s in specs)
    assert all(s.budget is not None and s.budget.max_tokens == 1000 for s in specs)


def test_explicit_agents_keep_their_own_budget_and_get_the_cluster_labels() -> None:
    specs = agent_specs(
        manifest(
            agents=[{"name": "a", "budget": {"max_tokens": 5}}, {"name": "b"}],
            budget={"max_tokens": 1000},
        )  # fmt: skip
    )
    assert [s.budget.max_tokens for s in specs if s.budget] == [5, 1000]
    assert specs[1].labels == {"team": "a", CLUSTER_LABEL: NAME}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec"),
        ({"agents": [{"name": "a"}], "template": {"spec": {"name": "t"}}}, "spec"),
        ({"agents": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}, "spec.agents[2].name"),
        ({"template": {"spec": {"name": "x" * 127}, "replicas": 10}}, "spec.template.spec.name"),
        (
            {"agents": [{"name": "a"}, {"name": "b"}],
             "resource_policy": {"max_concurrent_agents": 1}},
            "spec.resource_policy.max_concurrent_agents",
        ),
    ],
    ids=["neither agents nor template", "both", "duplicate name", "replica name too long",
         "more agents than allowed"],
)  # fmt: skip
def test_a_bad_manifest_is_refused_with_the_field_at_fault(
    spec: dict[str, Any], field: str
) -> None:
    command = CreateCluster(namespace=NS, manifest=manifest(**spec) if spec else _empty())
    error = refused(command, None)
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["errors"][0]["field"] == field


def _empty() -> ClusterManifest:
    return msgspec.structs.replace(
        manifest(), spec=msgspec.structs.replace(manifest().spec, agents=[])
    )


def test_a_manifest_for_another_namespace_is_refused() -> None:
    command = CreateCluster(namespace="elsewhere", manifest=manifest())
    error = refused(command, None)
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["errors"][0]["field"] == "metadata.namespace"


def test_a_good_manifest_has_no_problems() -> None:
    assert manifest_problems(manifest()) == []
    assert manifest_problems(manifest(template={"spec": {"name": "w"}, "replicas": 5})) == []


@pytest.mark.parametrize("history", [(create(),), (create(), PAUSE)], ids=["active", "paused"])
def test_creating_over_a_live_cluster_is_refused_as_existing(
    history: tuple[ClusterCommand, ...],
) -> None:
    error = refused(create(), given(*history))
    assert error.code is ErrorCode.CLUSTER_EXISTS and error.details == {
        "name": NAME,
        "namespace": NS,
    }


def test_a_deleted_cluster_can_be_created_again_on_the_same_stream() -> None:
    state = given(create(), DELETE, create(agents=[{"name": "solo"}]))
    assert state is not None and state.state == "active" and state.version == 3
    assert state.agent_ids == ("id-0",)


def test_a_create_needs_one_agent_id_per_agent() -> None:
    with pytest.raises(ParleyError) as info:
        decide(None, with_ids(create(), ["only-one"]), Context(NOW))
    assert info.value.code is ErrorCode.INVALID_REQUEST


# --- pause, resume, delete -----------------------------------------------------------------

IDS = ["id-0", "id-1"]


PAUSED = ("cluster.paused", ClusterStateChanged(name=NAME, agent_ids=IDS))
RESUMED = ("cluster.resumed", ClusterStateChanged(name=NAME, agent_ids=IDS))
DELETED = ("cluster.deleted", ClusterDeleted(name=NAME, agent_ids=IDS))


@pytest.mark.parametrize(
    ("history", "command", "events"),
    [
        ((create(),), PAUSE, [PAUSED]),
        ((create(), PAUSE), PAUSE, []),
        ((create(), PAUSE), RESUME, [RESUMED]),
        ((create(),), RESUME, []),
        ((create(),), DELETE, [DELETED]),
        ((create(), PAUSE), DELETE, [DELETED]),
    ],
    ids=["pause active", "pause paused (no-op)", "resume paused", "resume active (no-op)",
         "delete active", "delete paused"],
)  # fmt: skip
def test_pause_resume_and_delete_decide_one_event_or_none(
    history: tuple[ClusterCommand, ...], command: ClusterCommand, events: list[Any]
) -> None:
    assert decide(given(*history), command, Context(NOW)).events == events


def test_the_fold_follows_pause_resume_and_delete() -> None:
    paused = given(create(), PAUSE)
    assert paused is not None and paused.state == "paused" and paused.version == 2
    resumed = run(paused, RESUME)
    assert resumed is not None and resumed.state == "active" and resumed.version == 3
    deleted = run(resumed, DELETE)
    assert deleted is not None and deleted.state == "deleted" and not deleted.live


@pytest.mark.parametrize(
    "command", [PAUSE, RESUME, DELETE, scale()], ids=["pause", "resume", "delete", "scale"]
)
@pytest.mark.parametrize("history", [(), (create(), DELETE)], ids=["never created", "deleted"])
def test_commands_on_a_missing_cluster_are_not_found(
    command: ClusterCommand, history: tuple[ClusterCommand, ...]
) -> None:
    error = refused(command, given(*history))
    assert error.code is ErrorCode.CLUSTER_NOT_FOUND and error.details == {"name": NAME}


def test_another_namespaces_cluster_is_not_found() -> None:
    command = UpdateCluster(namespace="elsewhere", name=NAME, action="pause")
    assert refused(command, given(create())).code is ErrorCode.CLUSTER_NOT_FOUND


# --- scale ---------------------------------------------------------------------------------


def test_a_scale_opens_a_window_naming_the_agent_and_its_target() -> None:
    state = given(create())
    assert decide(state, scale(), Context(NOW)).events == [
        (
            "cluster.scale_started",
            ClusterScaleStarted(name=NAME, agent_id="id-1", agent_name="writer", instances=3),
        )
    ]
    opened = run(state, scale())
    assert opened is not None and opened.scaling is not None
    assert opened.scaling.agent_id == "id-1" and opened.scaling.started_at == NOW


def test_a_template_replica_is_scaled_by_its_numbered_name() -> None:
    state = given(create(template={"spec": {"name": "w"}, "replicas": 3}))
    [(_, started)] = decide(state, scale("w-3", 2), Context(NOW)).events
    assert isinstance(started, ClusterScaleStarted) and started.agent_id == "id-2"


def test_scaling_an_agent_not_in_the_cluster_is_a_validation_error() -> None:
    error = refused(scale("nobody"), given(create()))
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["errors"][0]["field"] == "agent_name"


@pytest.mark.parametrize(
    "command",
    [scale("triage", 1), PAUSE, RESUME, DELETE],
    ids=["scale", "pause", "resume", "delete"],
)
def test_while_a_scale_is_in_progress_other_changes_are_refused(command: ClusterCommand) -> None:
    state = run(given(create()), scale())
    error = refused(command, state, at=NOW + SCALE_TIMEOUT - timedelta(seconds=1))
    assert error.code is ErrorCode.SCALING_IN_PROGRESS
    assert error.details == {"name": NAME, "agent_name": "writer"}


def test_a_scale_window_older_than_the_timeout_is_abandoned_and_does_not_block() -> None:
    state = run(given(create()), scale())
    later = NOW + SCALE_TIMEOUT
    assert state is not None and state.scaling_at(later) is None
    assert decide(state, scale("triage", 1), Context(later)).events[0][0] == "cluster.scale_started"


def test_a_scale_closes_with_scaled_or_scale_failed() -> None:
    state = run(given(create()), scale())
    [(_, started)] = decide(given(create()), scale(), Context(NOW)).events
    assert isinstance(started, ClusterScaleStarted)
    fields = msgspec.structs.asdict(started)
    assert decide(state, EndScale(started=started), Context(NOW)).events == [
        ("cluster.scaled", ClusterScaled(**fields))
    ]
    error = ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="boom")
    assert decide(state, EndScale(started=started, error=error), Context(NOW)).events == [
        ("cluster.scale_failed", ClusterScaleFailed(**fields, error=error))
    ]
    for outcome in (
        decide(state, EndScale(started=started), Context(NOW)).events,
        decide(state, EndScale(started=started, error=error), Context(NOW)).events,
    ):
        closed = record(state, outcome, NOW)
        assert closed is not None and closed.scaling is None and closed.version == 3


def test_closing_a_window_that_is_no_longer_open_decides_nothing() -> None:
    started = ClusterScaleStarted(name=NAME, agent_id="id-1", agent_name="writer", instances=3)
    assert decide(given(create()), EndScale(started=started), Context(NOW)).events == []
    taken_over = run(run(given(create()), scale()), scale("triage", 1), at=NOW + SCALE_TIMEOUT)
    assert decide(taken_over, EndScale(started=started), Context(NOW)).events == []
    assert decide(None, EndScale(started=started), Context(NOW)).events == []


# --- the fold and properties ---------------------------------------------------------------


def test_every_event_decide_emits_is_a_known_type_that_evolve_accepts() -> None:
    state: Cluster | None = None
    at = NOW
    for command in (create(), PAUSE, RESUME, scale(), DELETE, create()):
        ids = ids_for(command) if isinstance(command, CreateCluster) else ()
        decided = decide(state, with_ids(command, ids), Context(at)).events
        for event_type, payload in decided:
            assert type(payload) is EVENT_TYPES[event_type]
        state = record(state, decided, at)
        if isinstance(command, ScaleCluster):
            assert state is not None and state.scaling is not None
            started = ClusterScaleStarted(**msgspec.structs.asdict(decided[0][1]))
            end = decide(state, EndScale(started=started), Context(NOW)).events
            assert type(end[0][1]) is EVENT_TYPES[end[0][0]]
            state = record(state, end, at)
        at += timedelta(seconds=1)
    assert state is not None and state.state == "active" and state.version == 7


def _event(event_type: str, data: dict[str, Any], version: int = 1) -> Event:
    return recorded_by_registry(
        event_type, data, stream=cluster_stream(NS, NAME), subject=NAME, version=version
    )


def test_the_fold_refuses_events_before_a_create_and_a_second_live_create() -> None:
    with pytest.raises(CorruptStreamError):
        evolve(None, _event("cluster.paused", {"name": NAME, "agent_ids": []}))
    created = msgspec.to_builtins(ClusterCreated(name=NAME, manifest=manifest(), agent_ids=IDS))
    with pytest.raises(CorruptStreamError):
        evolve(given(create()), _event("cluster.created", created, version=2))


def test_an_unknown_event_type_only_advances_the_version() -> None:
    state = given(create())
    after = evolve(state, _event("cluster.renamed", {}, version=2))
    assert after is not None and after.version == 2 and after.updated_at == state.updated_at
    assert evolve(None, _event("cluster.renamed", {})) is None


def test_the_stream_is_per_namespace_and_name_and_a_valid_stream_name() -> None:
    import re

    pattern = re.compile(r"^[a-z][a-z0-9_]{0,31}-[A-Za-z0-9_-]{1,160}$")
    streams = {cluster_stream(ns, n) for ns in ("a", "a-b") for n in ("x", "b-x", "y")}
    assert len(streams) == 6 and all(pattern.match(s) for s in streams)


@pytest.mark.parametrize(
    ("given_value", "seconds"),
    [(300, 300.0), ("300s", 300.0), ("5m", 300.0), ("1h", 3600.0), ("500ms", 0.5)],
)
def test_idle_timeout_takes_seconds_or_a_duration(given_value: float | str, seconds: float) -> None:
    policy = msgspec.convert({"idle_timeout": given_value}, ResourcePolicy)
    assert policy.idle_timeout is not None and duration_seconds(policy.idle_timeout) == seconds


def _raw(
    api: str = "parley.dev/v1",
    kind: str = "AgentCluster",
    name: str = "x",
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec or {}}


@pytest.mark.parametrize(
    "body",
    [
        _raw(api="goagents.dev/v1"),
        _raw(kind="Cluster"),
        _raw(name="Bad Name"),
        _raw(spec={"extra": 1}),
        _raw(spec={"resource_policy": {"idle_timeout": "soon"}}),
    ],
    ids=["wrong apiVersion", "wrong kind", "bad name", "unknown field", "bad duration"],
)
def test_the_manifest_schema_refuses_bad_manifests(body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(body, ClusterManifest)
