"""The messaging service's errors: one root, and the refusal every check raises."""

from typing import Any

import msgspec

from parley.contracts.acl import MessageReply
from parley.contracts.errors import ErrorBody, ErrorCode
from parley.eventstore import ConcurrencyConflict, EventStoreUnavailable, EventTooLarge

__all__ = ["MessagingError", "reply_for_error"]


class MessagingError(Exception):
    """A send the service refuses; carries the API error code it maps to.

    Args:
        code: The stable error code the edge reports.
        message: What went wrong and, where it helps, what to do about it.
        details: Structured detail (e.g. the message id and each receiver's outcome).
        reply: Reply fields that still apply (a recorded message that reached nobody).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        reply: MessageReply | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details, self.reply = code, message, details, reply

    def to_body(self) -> ErrorBody:
        """The error as a reply carries it."""
        return ErrorBody(code=self.code, message=self.message, details=self.details)


def reply_for_error(exc: Exception, log: Any) -> MessageReply:
    """The error reply for an exception raised while handling a send."""
    match exc:
        case MessagingError():
            base = exc.reply or MessageReply(ok=False)
            return msgspec.structs.replace(base, ok=False, error=exc.to_body())
        case msgspec.ValidationError():
            body = ErrorBody(code=ErrorCode.VALIDATION_ERROR, message=str(exc))
        case msgspec.DecodeError():
            body = ErrorBody(code=ErrorCode.INVALID_REQUEST, message=str(exc))
        case ConcurrencyConflict():
            body = ErrorBody(
                code=ErrorCode.CONCURRENCY_CONFLICT,
                message="the conversation kept changing while the message was recorded; retry"
                " with the same message_id",
            )
        case EventTooLarge():
            body = ErrorBody(code=ErrorCode.PAYLOAD_TOO_LARGE, message=str(exc))
        case EventStoreUnavailable():
            body = ErrorBody(code=ErrorCode.SERVICE_UNAVAILABLE, message=str(exc))
        case _:
            log.exception("send failed", exc_info=exc)
            body = ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="internal error")
    return MessageReply(ok=False, error=body)
