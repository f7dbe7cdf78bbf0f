"""What both backends share: the stored form of an event and name checks.

The stored form is the :class:`Event`'s JSON. Fields added to the envelope later (``actor``)
have defaults, so events stored before them still decode (``actor`` is then None).
"""

import hashlib
import re
from collections.abc import Sequence

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import valid_actor
from parley.eventstore.port import EventTooLarge
from parley.eventstore.port import InvalidStreamName

__all__ = [
    "EventHead",
    "check_append",
    "check_stream",
    "decode_event",
    "decode_head",
    "encode_event",
    "encode_within",
    "safe_key",
]

# The pattern of envelope.StreamName, compiled once; msgspec validates it only on decode.
_STREAM = re.compile(r"^[a-z][a-z0-9_]{0,31}-[A-Za-z0-9_-]{1,160}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

encode_event = msgspec.json.Encoder().encode
decode_event = msgspec.json.Decoder(Event).decode


def encode_within(event: Event, max_bytes: int) -> bytes:
    """The stored form of ``event``.

    Raises:
        EventTooLarge: It is longer than ``max_bytes``.
    """
    body = encode_event(event)
    if len(body) > max_bytes:
        raise EventTooLarge(len(body), max_bytes)
    return body


class EventHead(msgspec.Struct, frozen=True):
    """The two fields an append needs from a stored event; decoding skips the rest."""

    id: str
    version: int


decode_head = msgspec.json.Decoder(EventHead).decode


def check_stream(stream: str) -> None:
    """Raise InvalidStreamName unless ``stream`` is ``<category>-<id>``."""
    if not isinstance(stream, str) or not _STREAM.match(stream):
        raise InvalidStreamName(
            f"invalid stream name {stream!r}: use `<category>-<id>` "
            "(category: lowercase letters, digits, `_`; id: letters, digits, `_`, `-`)"
        )


def check_append(stream: str, events: Sequence[NewEvent]) -> None:
    """Raise InvalidStreamName for a bad ``stream``, ValueError for an empty append or an
    event whose ``actor`` is not a principal id (1-256 printable characters)."""
    check_stream(stream)
    if not events:
        raise ValueError("append needs at least one event")
    for event in events:
        if event.actor is not None and valid_actor(event.actor) is None:
            raise ValueError(f"invalid actor {event.actor!r}: 1-256 printable characters")


def safe_key(name: str) -> str:
    """``name`` as a key the backend accepts; a hash suffix keeps rewritten names distinct."""
    safe = _UNSAFE.sub("_", name)
    if safe != name or not safe:
        safe = f"{safe}_{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return safe
