"""The one mapping from an exception to the tasks service's error reply."""

import logging

import msgspec

from parley.contracts.errors import ErrorBody, ErrorCode
from parley.eventstore import ConcurrencyConflict, EventStoreUnavailable, EventTooLarge
from parley.tasks.task import TaskRefusal

__all__ = ["TaskRefusal", "error_body"]

log = logging.getLogger(__name__)


def error_body(exc: BaseException) -> ErrorBody:
    """The error body for an exception raised while handling a command."""
    match exc:
        case TaskRefusal():
            return ErrorBody(code=exc.code, message=exc.message)
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
