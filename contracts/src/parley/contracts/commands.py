"""What the command bodies share: strict decoding and the fields every command carries."""

import msgspec

from parley.contracts.ids import Namespace

__all__ = ["Command", "Strict", "TracedCommand"]


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
