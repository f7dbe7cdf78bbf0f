"""A Contract Net round's bids scored as the award strategy scores them (the same function
the tasks service ranks with), so the page shows why the winner won."""

from typing import get_args

from parley.aggregates.award import Bid
from parley.aggregates.award import score
from parley.contracts.tasks import AwardStrategy
from parley.contracts.tasks import Proposal
from parley.edge.projections.tasks import TaskView

__all__ = ["bid_scores"]


def bid_scores(task: TaskView) -> dict[str, float]:
    """Each bidder's score under the round's strategy (none before one is chosen)."""
    strategy = task.strategy
    if strategy not in get_args(AwardStrategy):
        return {}
    bids = [
        Bid(
            agent_id=p.agent_id,
            proposal=Proposal(
                estimated_time_s=p.estimated_time_s, cost=p.cost, confidence=p.confidence
            ),
            message_id="",
            reply_with=None,
            order=order,
        )
        for order, p in enumerate(task.proposals)
    ]
    return score(bids, strategy)  # type: ignore[arg-type]  # checked against its Literal
