"""The deployment service's policies that are not aggregates: pure, no I/O.

The aggregates decide (:mod:`parley.aggregates.deployment`,
:mod:`parley.aggregates.deployment_slot`); this module says when a slot's holder still counts
as active (:func:`holds_slot`), what a promoted definition is as a registry patch
(:func:`patch_for`) and which registry refusals are final (:func:`final_refusal`); and for a
cluster's deployment, its agents' own deployments (:func:`child_id`; each agent's definition is
:func:`parley.aggregates.cluster.member_spec`) and what they add up to (:func:`cluster_outcome`).
"""

import uuid
from datetime import datetime
from datetime import timedelta

import msgspec

from parley.aggregates.deployment import Complete
from parley.aggregates.deployment import Deployment
from parley.aggregates.deployment import DeploymentCommand
from parley.aggregates.deployment import Fail
from parley.aggregates.deployment_slot import Slot
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import AgentSpec

__all__ = [
    "CLAIM_GRACE",
    "SOURCE",
    "child_id",
    "cluster_outcome",
    "final_refusal",
    "holds_slot",
    "patch_for",
]

SOURCE = "/parley/deployment"
"""The ``source`` of every event the service appends."""
CLAIM_GRACE = timedelta(seconds=30)
"""A slot claimed this recently by a deployment not yet recorded is in flight, not abandoned."""
_RETRYABLE = frozenset({ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.INTERNAL_ERROR})


def holds_slot(slot: Slot | None, holder: Deployment | None, now: datetime) -> bool:
    """Whether the slot's holder keeps it: it is active, or its create is still in flight."""
    if slot is None:
        return False
    if holder is None:
        return now - slot.claimed_at < CLAIM_GRACE
    return holder.active


def patch_for(current: AgentSpec, new: AgentSpec) -> AgentPatch:
    """The registry patch that makes ``current`` into ``new`` (labels not kept are removed)."""
    fields = msgspec.to_builtins(new)
    labels: dict[str, str | None] = dict.fromkeys(current.labels)
    labels.update(new.labels)
    fields["labels"] = labels
    if new.system_prompt is None and new.persona is None:
        fields.pop("system_prompt", None)
    return msgspec.convert({k: v for k, v in fields.items() if v is not None}, AgentPatch)


def final_refusal(error: ErrorBody | None) -> bool:
    """Whether the registry's refusal stands (a bad definition), not a passing outage."""
    return error is not None and error.code not in _RETRYABLE


def child_id(deployment_id: str, agent_id: str) -> str:
    """The id of the deployment that gives one agent of a cluster the new template: the same
    in every process, so it is started once however often its batch is looked at."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"parley:deployment/{deployment_id}/{agent_id}"))


def cluster_outcome(children: list[Deployment | None]) -> DeploymentCommand | None:
    """A promoted cluster deployment's end from its agents' deployments (None for an agent
    that was gone): failed if one failed, complete once the rest completed, else None."""
    started = [c for c in children if c is not None]
    failed = [c for c in started if c.status in ("failed", "rolled_back")]
    if failed:
        reasons = "; ".join(f"agent {c.agent_id}: {c.reason}" for c in failed)
        return Fail(reason=f"{len(failed)} of {len(children)} agents did not take it: {reasons}")
    if all(c.status == "completed" for c in started):
        return Complete(agent_version=0)
    return None
