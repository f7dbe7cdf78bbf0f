"""Award strategies of the Contract Net: score and rank a round's bids.

Higher score wins; equal scores go to the earliest proposal.

- ``best_bid``: ``0.4·cost_score + 0.3·time_score + 0.3·confidence``, where
  ``cost_score = lowest cost / cost`` and ``time_score = shortest time / time`` over the
  round's proposals (1.0 when both are 0), so each part lies in [0, 1].
- ``lowest_cost``: ``1 / (1 + cost)``; ``fastest``: ``1 / (1 + estimated_time_s)``;
  ``highest_confidence``: ``confidence``.
"""

from datetime import datetime

import msgspec

from parley.contracts.tasks import AwardStrategy
from parley.contracts.tasks import Proposal

__all__ = ["BEST_BID_WEIGHTS", "Bid", "rank", "score"]

BEST_BID_WEIGHTS = (0.4, 0.3, 0.3)
"""Weights of cost, time and confidence in ``best_bid``."""


class Bid(msgspec.Struct, frozen=True, kw_only=True):
    """A proposal as the round holds it."""

    agent_id: str
    """The bidder."""
    proposal: Proposal
    """What it offers."""
    message_id: str
    """Id of its ``propose``."""
    reply_with: str | None
    """The ``reply-with`` of its ``propose`` (answers go ``in-reply-to`` it)."""
    order: int
    """Arrival order in the round (ties go to the earliest)."""
    received_at: datetime | None = None
    """Time of its ``task.proposal_received``."""


def score(bids: list[Bid], strategy: AwardStrategy) -> dict[str, float]:
    """Each bid's score under ``strategy`` (higher is better; see the module docstring)."""
    if not bids:
        return {}
    if strategy == "lowest_cost":
        return {b.agent_id: 1 / (1 + b.proposal.cost) for b in bids}
    if strategy == "fastest":
        return {b.agent_id: 1 / (1 + b.proposal.estimated_time_s) for b in bids}
    if strategy == "highest_confidence":
        return {b.agent_id: b.proposal.confidence for b in bids}
    w_cost, w_time, w_conf = BEST_BID_WEIGHTS
    low_cost = min(b.proposal.cost for b in bids)
    low_time = min(b.proposal.estimated_time_s for b in bids)
    return {
        b.agent_id: w_cost * _relative(low_cost, b.proposal.cost)
        + w_time * _relative(low_time, b.proposal.estimated_time_s)
        + w_conf * b.proposal.confidence
        for b in bids
    }


def rank(bids: list[Bid], strategy: AwardStrategy) -> list[tuple[Bid, float]]:
    """Bids best first, with their scores; equal scores keep arrival order."""
    scores = score(bids, strategy)
    ordered = sorted(bids, key=lambda b: (-scores[b.agent_id], b.order))
    return [(b, scores[b.agent_id]) for b in ordered]


def _relative(best: float, value: float) -> float:
    if value <= 0:
        return 1.0
    return best / value
