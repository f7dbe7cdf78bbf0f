"""The registry's settings, from ``PARLEY_*`` environment variables."""

from parley.kit.settings import ServiceSettings

__all__ = ["RegistrySettings"]


class RegistrySettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one registry process."""

    relay_ext_events: bool = True
    """Relay every event to its namespace's subject in the `PARLEY_EXT_EVENTS` stream, where
    the NATS `external` user reads its namespace's events (`PARLEY_RELAY_EXT_EVENTS`; needs
    the JetStream event store)."""
    ext_events_max_age: float = 7 * 86_400.0
    """Seconds `PARLEY_EXT_EVENTS` keeps a relayed event (`PARLEY_EXT_EVENTS_MAX_AGE`;
    0: for ever)."""
    ext_events_max_bytes: int = 1 << 30
    """Bytes `PARLEY_EXT_EVENTS` keeps, the oldest dropped first
    (`PARLEY_EXT_EVENTS_MAX_BYTES`; -1: no limit)."""
    ext_events_batch: int = 256
    """Events relayed per batch, and unacknowledged at most (`PARLEY_EXT_EVENTS_BATCH`)."""
