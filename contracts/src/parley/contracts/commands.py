"""What the command bodies share: strict decoding and the fields every command carries, and
the fields every command's reply carries."""

import msgspec

from parley.contracts.errors import ErrorBody
from parley.contracts.ids import Namespace

__all__ = ["Command", "Reply", "Strict", "TracedCommand"]


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body: a field the type does not know is refused."""


class Command(Strict):
    """A command of a namespace, with the request id the edge gave it."""

    namespace: Namespace = "default"
    """Tenant the aggregate lives in."""
    request_id: str | None = None
    """The edge's request id, kept as the events' correlation id."""


class TracedCommand(Strict):
    """A command that also carries the caller's trace context (its namespace is any name)."""

    namespace: str = "default"
    request_id: str | None = None
    traceparent: str | None = None


class Reply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What every command's reply says: done or not, where the stream is now, or why not.

    Each context's reply adds the ids its commands make (they come after these fields).
    """

    ok: bool
    version: int = 0
    """Version of the command's stream after the command."""
    position: int = 0
    """Global position of the last event the command appended; the edge waits for its
    projection to reach it."""
    error: ErrorBody | None = None
