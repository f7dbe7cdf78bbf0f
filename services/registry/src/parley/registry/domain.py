"""The registry's policies that are not aggregates (no I/O).

The aggregates themselves (agent, name claim, persona, cluster: state, ``evolve``,
``decide``) live in :mod:`parley.aggregates`; this module holds the rules the handlers apply
around them: when a name claim is still in flight, which agent a crashed cluster create left
behind, what a cluster's pause or resume does to each agent, and how the problems of many
agent definitions become one refusal.
"""

from datetime import datetime
from datetime import timedelta

from parley.aggregates.agent import Agent
from parley.contracts.clusters import CLUSTER_LABEL
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentState

__all__ = [
    "CLAIM_GRACE",
    "PARALLEL",
    "SOURCE",
    "cluster_actions",
    "claim_in_flight",
    "orphan_of",
    "refusal",
]

SOURCE = "/parley/registry"
"""The ``source`` of every event the registry appends."""

CLAIM_GRACE = timedelta(seconds=30)
"""A name claimed this recently by an agent not yet created is in flight, not abandoned."""

PARALLEL = 16
"""Agents created, started or deleted at once by one cluster command."""


def claim_in_flight(claimed_at: datetime, now: datetime) -> bool:
    """Whether a claim whose agent does not exist (yet) still holds its name at ``now``."""
    return now - claimed_at < CLAIM_GRACE


def orphan_of(agent: Agent, cluster: str, now: datetime) -> bool:
    """Left over by a create of ``cluster`` that died half way (the cluster was checked to
    be absent; a create still in flight is younger than the grace)."""
    return agent.spec.labels.get(CLUSTER_LABEL) == cluster and now - agent.created_at > CLAIM_GRACE


def cluster_actions(action: str) -> dict[AgentState, AgentAction]:
    """What a cluster's ``pause`` or ``resume`` does to an agent in each state (others stay)."""
    if action == "pause":
        return {AgentState.RUNNING: AgentAction.PAUSE}
    return {AgentState.PAUSED: AgentAction.RESUME, AgentState.CREATED: AgentAction.START}


def refusal(problems: list[dict[str, str]]) -> ParleyError:
    """One refusal for many ``{"field", "code", "message"}`` problems; the first one's code."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ParleyError(
        ErrorCode(first["code"]),
        f"{first['field']}: {first['message']}{more}",
        {"errors": problems},
    )
