"""Moved to :mod:`parley.eventstore.repository`; kept while imports move over."""

from parley.eventstore.repository import Loaded, Outcome, execute, load

__all__ = ["Loaded", "Outcome", "execute", "load"]
