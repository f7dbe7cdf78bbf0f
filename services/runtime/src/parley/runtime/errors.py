"""The runtime's refusals and the one mapping from an exception to an error reply."""

import logging
from typing import Any

from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.runtime import RuntimeReply
from parley.identity.scrub import Scrubber
from parley.kit.errors import error_body_for

__all__ = ["RuntimeFault", "error_body", "reply_for_error", "scrubbed"]

log = logging.getLogger(__name__)


class RuntimeFault(ParleyError):
    """A request or run the runtime refuses or cannot finish, with its API error code.

    ``retryable`` tells an execution whether another attempt may succeed (provider trouble).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retryable: bool = False,
    ) -> None:
        super().__init__(code, message, details)
        self.retryable = retryable


def error_body(exc: BaseException) -> ErrorBody:
    """The error body for an exception raised while handling a command."""
    return error_body_for(exc, log=log)


def reply_for_error(exc: Exception) -> RuntimeReply:
    """The reply to a command that raised ``exc``."""
    return RuntimeReply(ok=False, error=error_body(exc))


def scrubbed(error: ErrorBody | None, scrubber: Scrubber) -> ErrorBody | None:
    """``error`` with its message and details scrubbed of secrets (a run's outcome error
    can quote what a provider or a tool sent back)."""
    if error is None:
        return None
    return ErrorBody(
        code=error.code,
        message=scrubber.scrub(error.message),
        details=scrubber.scrub_data(error.details),
    )
