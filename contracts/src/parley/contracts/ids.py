"""Identifiers: UUIDv7 (time-ordered) for events, agents and requests."""

import uuid_utils

__all__ = ["new_id"]


def new_id() -> str:
    """Return a new UUIDv7 as its canonical string."""
    return str(uuid_utils.uuid7())
