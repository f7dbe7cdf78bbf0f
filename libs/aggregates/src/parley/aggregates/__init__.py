"""Folds of events into state, written once: the services decide with them, the edge's
projections show them."""
