"""The edge's read models: each maps the state folded by :mod:`parley.aggregates` to its view."""
