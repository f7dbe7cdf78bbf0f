"""The runtime's settings, from ``PARLEY_*`` environment variables."""

import os
import socket

import msgspec

from parley.kit.settings import ServiceSettings

__all__ = ["RuntimeSettings"]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RuntimeSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one runtime process."""

    worker: str = msgspec.field(default_factory=_worker_name)
    """This process's name in events and slot leases (`PARLEY_WORKER`)."""
    queue_limit: int = 100
    """Requests per agent that may wait for a free instance (`PARLEY_QUEUE_LIMIT`)."""
    queue_timeout: float = 10.0
    """Seconds a request waits for a free instance before 429 (`PARLEY_QUEUE_TIMEOUT`)."""
    lease_ttl: float = 15.0
    """Seconds a slot lease lives unless renewed (`PARLEY_LEASE_TTL`)."""
    idle_timeout: float = 300.0
    """Seconds without a request before an agent's warm instance stops (`PARLEY_IDLE_TIMEOUT`)."""
    session_wait: float = 30.0
    """Seconds an `enqueue` message waits for the running turn (`PARLEY_SESSION_WAIT`)."""
    max_file_bytes: int = 512 * 1024
    """Largest session file (`PARLEY_MAX_FILE_BYTES`)."""
    ack_wait: float = 30.0
    """Seconds before an unacknowledged execution is redelivered (`PARLEY_ACK_WAIT`)."""
    executions_in_flight: int = 16
    """Executions one runtime works at once (`PARLEY_EXECUTIONS_IN_FLIGHT`)."""
    scheduler_tick: float = 0.5
    """Seconds between the scheduler's looks at periodic triggers (`PARLEY_SCHEDULER_TICK`)."""
