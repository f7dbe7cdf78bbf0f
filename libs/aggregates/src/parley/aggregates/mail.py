"""The effect of the task and group-run deciders: an ACL message to send after the append.

The deciders mint each message's id and record the ids that matter for recovery in their
events, so a restarted service can tell which messages never left and send them then.
"""

from datetime import datetime
from typing import Any

import msgspec

from parley.contracts.acl import Performative

__all__ = ["Mail"]


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    """An ACL message to send once the decision's events are appended."""

    message_id: str
    """The message's id (also its ``reply-with``), minted by the decider."""
    performative: Performative
    """What the message does (``cfp``, ``accept-proposal``, ``request``, ``cancel``, …)."""
    receivers: tuple[str, ...]
    """The agents it goes to."""
    content: Any
    """Its content (JSON, or a string)."""
    in_reply_to: str | None = None
    """The message it answers, if any."""
    reply_by: datetime | None = None
    """When answers are due (a ``cfp``'s deadline)."""
