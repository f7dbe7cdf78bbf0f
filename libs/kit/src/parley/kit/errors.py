"""The error body for the failures every service's commands share.

Each service maps its own refusals first (they carry their code) and hands everything else
here: bad input, event-store conflicts and outages, and the unknown (logged with its
traceback, answered as ``INTERNAL_ERROR``).
"""

import logging

import msgspec
import nats.errors
import nats.js.errors

from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.eventstore import ConcurrencyConflict
from parley.eventstore import EventStoreUnavailable
from parley.eventstore import EventTooLarge

__all__ = ["error_body_for"]

_log = logging.getLogger(__name__)

CONFLICT_MESSAGE = "the resource is at version {actual}, not {expected}: read it again and retry"


BUS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    TimeoutError,
)
"""What NATS raises while a node fails over or the connection is away: the request may
succeed when retried, so it is answered ``SERVICE_UNAVAILABLE``, not ``INTERNAL_ERROR``."""


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
        case _ if isinstance(exc, BUS_UNAVAILABLE):
            log.warning("command failed on NATS: %r", exc)
            return ErrorBody(
                code=ErrorCode.SERVICE_UNAVAILABLE,
                message="the message bus did not answer (a NATS node failing over?); retry shortly",
            )
    log.error("command failed", exc_info=exc)
    return ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="internal error")
