"""The short-lived JetStream stream that keeps recent token deltas for resume.

Runtimes publish a turn's :class:`~parley.contracts.runtime.TurnDelta` frames with a plain
core-NATS publish on ``parley.stream.turn.<turn id>``; live readers subscribe to that subject.
This memory stream captures the same subjects for a few minutes, so a reader that lost its
connection replays the frames it missed (``Last-Event-ID``) from it.
"""

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy
from nats.js.api import RetentionPolicy
from nats.js.api import StorageType
from nats.js.api import StreamConfig

from parley.kit.streams import ensure_stream

__all__ = ["DELTA_STREAM", "DELTA_SUBJECTS", "ensure_delta_stream"]

DELTA_STREAM = "PARLEY_DELTAS"
DELTA_SUBJECTS = ["parley.stream.>"]
_MAX_AGE_S = 600.0
_MAX_BYTES = 256 * 1024 * 1024
_MAX_PER_TURN = 100_000


async def ensure_delta_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create (or keep) the delta stream: memory storage, 10 minutes, bounded bytes,
    ``replicas`` copies."""
    config = StreamConfig(
        name=DELTA_STREAM,
        subjects=DELTA_SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.MEMORY,
        max_age=_MAX_AGE_S,
        max_bytes=_MAX_BYTES,
        max_msgs_per_subject=_MAX_PER_TURN,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
    )
    await ensure_stream(js, config)
