"""The error body for the failures every service's commands share.

Each service maps its own refusals first (they carry their code) and hands everything else
here: bad input, event-store conflicts and outages, and the unknown (logged with its
traceback, answered as ``INTERNAL_ERROR``).
"""

import logging

import msgspec

from parley.contracts.errors import ErrorBody, ErrorCode, ParleyError
from parley.eventstore import ConcurrencyConflict, EventStoreUnavailable, EventTooLarge

__all__ = ["error_body_for"]

_log = logging.getLogger(__name__)

CONFLICT_MESSAGE = "the resource is at version {actual}, not {expected}: read it again and retry"


def error_body_for(
    exc: BaseException,
    *,
    conflict_message: str = CONFLICT_MESSAGE,
    log: logging.Logger = _log,
) -> ErrorBody:
    """The error body for an exception raised while handling a command.

    Args:
        exc: What the handler (or the decoder) raised.
        conflict_message: The conflict's message; ``{actual}`` and ``{expected}`` are the
            stream's versions.
        log: Where an unexpected exception is logged, with its traceback.
    """
    match exc:
        case ParleyError():
            return exc.to_body()
        case msgspec.ValidationError():
            return ErrorBody(code=ErrorCode.VALIDATION_ERROR, message=str(exc))
        case msgspec.DecodeError():
            return ErrorBody(code=ErrorCode.INVALID_REQUEST, message=str(exc))
        case ConcurrencyConflict():
            return ErrorBody(
                code=ErrorCode.CONCURRENCY_CONFLICT,
                message=conflict_message.format(actual=exc.actual, expected=exc.expected),
                details={"expected": exc.expected, "actual": exc.actual},
            )
        case EventTooLarge():
            return ErrorBody(code=ErrorCode.PAYLOAD_TOO_LARGE, message=str(exc))
        case EventStoreUnavailable():
            return ErrorBody(code=ErrorCode.SERVICE_UNAVAILABLE, message=str(exc))
    log.error("command failed", exc_info=exc)
    return ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="internal error")
