"""ACL messages as the task and group-run deciders send and read them.

:class:`Mail` is their effect: a message to send once the decision's events are appended.
The deciders mint each message's id and record the ids that matter for recovery in their
events, so a restarted service can tell which messages never left and send them then.
:func:`reason_of`, :func:`progress_of` and :func:`usage_of` read the content of the answers
agents send back (``{"reason"}``, ``{"progress", "note"}``, ``{"usage"}``).
"""

from datetime import datetime
from typing import Any

import msgspec

from parley.contracts.acl import Performative

__all__ = ["Mail", "progress_of", "reason_of", "usage_of"]


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


def reason_of(content: Any, *, default: str, text: bool = True) -> str:
    """Why an agent refused or failed: ``content["reason"]``, else (with ``text``) the
    content itself when it is a non-empty string, else ``default``; at most 1024 characters."""
    if isinstance(content, dict) and isinstance(content.get("reason"), str):
        return str(content["reason"])[:1024]
    if text and isinstance(content, str) and content:
        return content[:1024]
    return str(default)


def progress_of(content: dict[str, Any]) -> tuple[float | None, str] | None:
    """A progress report: percent done (a fraction in [0, 1] counts as a share) and a note.

    A string ``progress`` is a note without a figure; anything else is not a report (None).
    """
    value = content.get("progress")
    note = content.get("note") if isinstance(content.get("note"), str) else ""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        percent = float(value) * 100 if 0 <= value <= 1 else float(value)
        return max(0.0, min(100.0, percent)), str(note)
    if isinstance(value, str):
        return None, value[:1024]
    return None


def usage_of(content: Any) -> dict[str, float]:
    """Tokens and cost an agent reports in its answer (``usage``), as ``tokens``/``cost_usd``."""
    usage = content.get("usage") if isinstance(content, dict) else None
    if not isinstance(usage, dict):
        return {}
    found: dict[str, float] = {}
    tokens = usage.get("tokens")
    if tokens is None and ("input_tokens" in usage or "output_tokens" in usage):
        tokens = (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    if isinstance(tokens, int | float) and not isinstance(tokens, bool):
        found["tokens"] = float(tokens)
    cost = usage.get("cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        found["cost_usd"] = float(cost)
    return found
