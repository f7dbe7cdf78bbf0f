"""The cluster aggregate's template change: what a completed template deployment records."""

import msgspec
from _builders import NOW
from _builders import NS
from test_cluster_domain import DELETE
from test_cluster_domain import NAME
from test_cluster_domain import create
from test_cluster_domain import given
from test_cluster_domain import refused
from test_cluster_domain import run
from test_cluster_resize import closed
from test_cluster_resize import resize

from parley.aggregates.cluster import Cluster
from parley.aggregates.cluster import agent_specs
from parley.aggregates.cluster import decide
from parley.aggregates.decision import Context
from parley.contracts.clusters import ChangeClusterTemplate
from parley.contracts.clusters import ClusterTemplateChanged
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import AgentSpec

OLD = {"name": "w", "system_prompt": "v1", "instances": 2, "labels": {"tier": "a"}}
TEMPLATE = {"template": {"spec": OLD, "replicas": 2}}


def change(**spec: object) -> ChangeClusterTemplate:
    """The deployment service's command for deployment ``d-1`` of template ``spec``."""
    definition = msgspec.convert({"name": "other", **spec}, AgentSpec)
    return ChangeClusterTemplate(namespace=NS, name=NAME, spec=definition, deployment_id="d-1")


def template_of(state: Cluster | None) -> AgentSpec:
    assert state is not None and state.manifest.spec.template is not None
    return state.manifest.spec.template.spec


def test_a_new_template_is_recorded_as_each_agent_took_it() -> None:
    state = given(create(**TEMPLATE))
    events = decide(state, change(system_prompt="v2", labels={"team": "b"}), Context(NOW)).events
    expected = msgspec.convert(
        {**OLD, "system_prompt": "v2", "labels": {"tier": "a", "team": "b"}}, AgentSpec
    )
    assert events == [
        (
            "cluster.template_changed",
            ClusterTemplateChanged(name=NAME, template=expected, deployment_id="d-1"),
        )
    ]


def test_the_fold_makes_later_agents_from_the_new_template() -> None:
    state = run(given(create(**TEMPLATE)), change(system_prompt="v2"))
    assert template_of(state).system_prompt == "v2"
    assert template_of(state).name == "w" and template_of(state).instances == 2
    assert state is not None and state.manifest.spec.template is not None
    assert state.manifest.spec.template.replicas == 2
    grown = closed(state, 3, ["id-0", "id-1", "n-2"])
    assert grown is not None
    assert [(s.name, s.system_prompt) for s in agent_specs(grown.manifest)] == [
        ("w-1", "v2"),
        ("w-2", "v2"),
        ("w-3", "v2"),
    ]


def test_the_same_template_again_records_nothing() -> None:
    state = run(given(create(**TEMPLATE)), change(system_prompt="v2"))
    assert decide(state, change(system_prompt="v2"), Context(NOW)).events == []


def test_a_cluster_without_a_template_or_gone_or_scaling_refuses_it() -> None:
    assert refused(change(), given(create())).code == ErrorCode.VALIDATION_ERROR
    assert refused(change(), given(create(**TEMPLATE), DELETE)).code == (
        ErrorCode.CLUSTER_NOT_FOUND
    )
    scaling = run(given(create(**TEMPLATE)), resize(4))
    assert refused(change(), scaling).code == ErrorCode.SCALING_IN_PROGRESS
