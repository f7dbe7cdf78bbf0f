"""Five bids and the one each award strategy must pick: the Contract Net's known answers,
checked against the decider (``tests/unit``) and against the running services (``tests/e2e``)."""

__all__ = ["BIDS", "WINNERS"]

BIDS = {  # bidder: (cost, time, confidence)
    "cheap": (1, 10, 0.5),
    "quick": (10, 1, 0.5),
    "sure": (10, 10, 0.99),
    "balanced": (2, 2, 0.9),
    "poor": (20, 20, 0.1),
}
WINNERS = {
    "lowest_cost": "cheap",
    "fastest": "quick",
    "highest_confidence": "sure",
    "best_bid": "balanced",
}
"""Award strategy → the bidder of :data:`BIDS` it awards."""
