"""The messaging service's settings, from ``PARLEY_*`` environment variables."""

from parley.kit.settings import ServiceSettings

__all__ = ["MessagingSettings"]


class MessagingSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one messaging process."""

    send_workers: int = 1024
    """Sends handled at once, send-and-wait waits included (`PARLEY_SEND_WORKERS`); a wait
    holds a worker but no CPU."""
    redeliver_window: float = 86_400.0
    """Seconds back the start-up sweep re-publishes deliveries no runtime has taken
    (`PARLEY_REDELIVER_WINDOW`)."""
    conversations_cached: int = 50_000
    """Conversations whose folded state is kept between sends (`PARLEY_CONVERSATIONS_CACHED`)."""
