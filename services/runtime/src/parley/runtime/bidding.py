"""How an agent bids for a tendered task: a deterministic policy from its definition.

The agent's ``bidding`` (see :class:`~parley.contracts.registry.Bidding`) and what this
runtime measured of it (average response time, success rate) and its current load make the
bid. Same inputs, same bid: the Contract Net's choice between agents is reproducible.
"""

from dataclasses import dataclass
from typing import Any

from parley.contracts.registry import AgentSpec
from parley.contracts.tasks import Proposal

__all__ = ["AgentStats", "Stats", "bid"]

_DEFAULT_CONFIDENCE = 0.8
_EWMA = 0.2


@dataclass
class Stats:
    """One agent's finished turns, as this runtime saw them."""

    count: int = 0
    succeeded: int = 0
    avg_response_s: float = 0.0

    @property
    def success_rate(self) -> float:
        """Share of finished turns that completed (1.0 before the first)."""
        return self.succeeded / self.count if self.count else 1.0


class AgentStats:
    """Per-agent measurements, updated as turns end (an exponentially weighted mean)."""

    def __init__(self) -> None:
        self._by_agent: dict[str, Stats] = {}

    def get(self, agent_id: str) -> Stats | None:
        """What was measured of ``agent_id``, if anything."""
        return self._by_agent.get(agent_id)

    def record(self, agent_id: str, ok: bool, response_s: float) -> None:
        """Fold one finished turn in."""
        stats = self._by_agent.setdefault(agent_id, Stats())
        stats.avg_response_s = (
            response_s
            if stats.count == 0
            else (1 - _EWMA) * stats.avg_response_s + _EWMA * response_s
        )
        stats.count += 1
        stats.succeeded += int(ok)


def bid(spec: AgentSpec, cfp: dict[str, Any], stats: Stats | None, load: int) -> Proposal | str:
    """A proposal for the task in ``cfp``, or the reason to refuse it.

    Refuses when the policy says so, when a required capability is missing, or at
    ``max_load``. Otherwise: time = measured average response time (or ``default_time_s``)
    × (1 + load); cost = ``base_cost`` + ``cost_per_second`` × time; confidence = the set
    ``confidence``, else the measured success rate (0.8 before any measurement).
    """
    policy = spec.bidding
    if policy.refuse:
        return "this agent does not take tendered work"
    requirements = cfp.get("requirements") or {}
    wanted = requirements.get("capabilities") or [] if isinstance(requirements, dict) else []
    missing = sorted(set(wanted) - set(spec.capabilities))
    if missing:
        return f"missing capabilities: {', '.join(missing)}"
    if policy.max_load is not None and load >= policy.max_load:
        return f"at capacity: {load} of {policy.max_load} turns running"
    measured = stats is not None and stats.count > 0
    base = stats.avg_response_s if measured and stats is not None else policy.default_time_s
    time_s = base * (1 + load)
    if policy.confidence is not None:
        confidence = policy.confidence
    elif measured and stats is not None:
        confidence = stats.success_rate
    else:
        confidence = _DEFAULT_CONFIDENCE
    return Proposal(
        estimated_time_s=round(time_s, 6),
        cost=round(policy.base_cost + policy.cost_per_second * time_s, 6),
        confidence=round(confidence, 4),
    )
