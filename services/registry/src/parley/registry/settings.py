"""The registry's settings, from ``PARLEY_*`` environment variables."""

from typing import Annotated

import msgspec

from parley.kit.settings import ServiceSettings

__all__ = ["RegistrySettings"]


class RegistrySettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one registry process."""

    relay_ext_events: bool = True
    """Relay the events of `ext_namespaces` to their namespace's subjects, where each
    namespace's NATS `external` user reads them (`PARLEY_RELAY_EXT_EVENTS`; needs the
    JetStream event store)."""
    ext_namespaces: str = "default"
    """The namespaces with an external NATS account, comma-separated
    (`PARLEY_EXT_NAMESPACES`; see `deploy/nats/nats-server.conf`)."""
    ext_events_max_age: float = 7 * 86_400.0
    """Seconds each `PARLEY_EXT_EVENTS` stream keeps a relayed event (`PARLEY_EXT_EVENTS_MAX_AGE`;
    0: for ever)."""
    ext_events_max_bytes: int = 1 << 30
    """Bytes each `PARLEY_EXT_EVENTS` stream keeps, the oldest dropped first
    (`PARLEY_EXT_EVENTS_MAX_BYTES`; -1: no limit)."""
    ext_events_batch: int = 256
    """Events relayed per batch, and unacknowledged at most (`PARLEY_EXT_EVENTS_BATCH`)."""
    ext_events_linger: Annotated[float, msgspec.Meta(ge=0.0, le=5.0)] = 0.05
    """Seconds the relay waits after a batch that was not full, gathering the next
    (`PARLEY_EXT_EVENTS_LINGER`): fewer wake-ups under load, for that much delay at most."""

    def external_namespaces(self) -> list[str]:
        """`ext_namespaces` as a list."""
        return [ns.strip() for ns in self.ext_namespaces.split(",") if ns.strip()]
