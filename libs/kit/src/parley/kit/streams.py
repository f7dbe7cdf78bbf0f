"""Creating the JetStream streams a service relies on, at start-up, idempotently."""

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

__all__ = ["ensure_stream"]


async def ensure_stream(js: JetStreamContext, config: StreamConfig, *, update: bool = True) -> None:
    """Create the stream ``config`` describes; if it exists, bring it to ``config`` (or, with
    ``update=False``, leave it as whoever created it made it)."""
    try:
        await js.add_stream(config)
    except BadRequestError:
        if update:
            await js.update_stream(config)
