"""The runtime's refusals and the one mapping from an exception to an error reply."""

import logging
from typing import Any

from parley.contracts.errors import ErrorBody, ErrorCode
from parley.kit.errors import error_body_for

__all__ = ["RuntimeFault", "error_body"]

log = logging.getLogger(__name__)


class RuntimeFault(Exception):
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
        super().__init__(message)
        self.code, self.message, self.details, self.retryable = code, message, details, retryable

    def to_body(self) -> ErrorBody:
        """The error as a reply or event carries it."""
        return ErrorBody(code=self.code, message=self.message, details=self.details)


def error_body(exc: BaseException) -> ErrorBody:
    """The error body for an exception raised while handling a command."""
    if isinstance(exc, RuntimeFault):
        return exc.to_body()
    return error_body_for(exc, log=log)
