"""The tasks service's settings, from ``PARLEY_*`` environment variables."""

from parley.kit.settings import ServiceSettings

__all__ = ["TasksSettings"]


class TasksSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one tasks process."""

    tasks_ack_wait: float = 10.0
    """Seconds before an unacknowledged inbox item is redelivered (`PARLEY_TASKS_ACK_WAIT`)."""
    tasks_inbox_batch: int = 256
    """Inbox items asked for at once; a task's items that arrive together are one append
    (`PARLEY_TASKS_INBOX_BATCH`)."""
    tasks_send_timeout: float = 5.0
    """Seconds to wait for the messaging service to take a message
    (`PARLEY_TASKS_SEND_TIMEOUT`)."""
    tasks_wait_slack: float = 5.0
    """Seconds a `distribute` with `wait` waits beyond its `max_wait_seconds`
    (`PARLEY_TASKS_WAIT_SLACK`)."""
