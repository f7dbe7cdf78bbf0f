"""The runtime's refusals and the one mapping from an exception to an error reply."""

import logging
from typing import Any

import msgspec

from parley.contracts.errors import ErrorBody, ErrorCode
from parley.eventstore import ConcurrencyConflict, EventStoreUnavailable, EventTooLarge

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
    match exc:
        case RuntimeFault():
            return exc.to_body()
        case msgspec.ValidationError():
            return ErrorBody(code=ErrorCode.VALIDATION_ERROR, message=str(exc))
        case msgspec.DecodeError():
            return ErrorBody(code=ErrorCode.INVALID_REQUEST, message=str(exc))
        case ConcurrencyConflict():
            return ErrorBody(
                code=ErrorCode.CONCURRENCY_CONFLICT,
                message=f"the resource is at version {exc.actual}, not {exc.expected}:"
                " read it again and retry",
                details={"expected": exc.expected, "actual": exc.actual},
            )
        case EventTooLarge():
            return ErrorBody(code=ErrorCode.PAYLOAD_TOO_LARGE, message=str(exc))
        case EventStoreUnavailable():
            return ErrorBody(code=ErrorCode.SERVICE_UNAVAILABLE, message=str(exc))
    log.error("command failed", exc_info=exc)
    return ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="internal error")
