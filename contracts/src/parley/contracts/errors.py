"""Error codes and the error body shared by every service and the edge."""

from enum import StrEnum
from typing import Any

import msgspec

__all__ = ["HTTP_STATUS", "ErrorBody", "ErrorCode", "ParleyError"]


class ErrorCode(StrEnum):
    """Stable error codes, as they appear in the API's error envelope."""

    INVALID_REQUEST = "INVALID_REQUEST"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    AGENT_NOT_FOUND = "AGENT_NOT_FOUND"
    CLUSTER_NOT_FOUND = "CLUSTER_NOT_FOUND"
    AGENT_ALREADY_EXISTS = "AGENT_ALREADY_EXISTS"
    CLUSTER_EXISTS = "CLUSTER_EXISTS"
    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"
    CONCURRENCY_CONFLICT = "CONCURRENCY_CONFLICT"
    PRECONDITION_REQUIRED = "PRECONDITION_REQUIRED"
    TOOL_NOT_AVAILABLE = "TOOL_NOT_AVAILABLE"
    STRATEGY_NOT_AVAILABLE = "STRATEGY_NOT_AVAILABLE"
    PROVIDER_NOT_AVAILABLE = "PROVIDER_NOT_AVAILABLE"
    SCALING_IN_PROGRESS = "SCALING_IN_PROGRESS"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    AGENT_NOT_RUNNING = "AGENT_NOT_RUNNING"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_BUSY = "SESSION_BUSY"
    NO_ACTIVE_TURN = "NO_ACTIVE_TURN"
    EXECUTION_NOT_FOUND = "EXECUTION_NOT_FOUND"
    INPUT_NOT_EXPECTED = "INPUT_NOT_EXPECTED"
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    PERSONA_NOT_FOUND = "PERSONA_NOT_FOUND"
    PERSONA_EXISTS = "PERSONA_EXISTS"
    PERSONA_READ_ONLY = "PERSONA_READ_ONLY"
    MESSAGE_DELIVERY_FAILED = "MESSAGE_DELIVERY_FAILED"
    PROTOCOL_VIOLATION = "PROTOCOL_VIOLATION"
    MESSAGE_EXPIRED = "MESSAGE_EXPIRED"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    RUN_NOT_FOUND = "RUN_NOT_FOUND"
    DEPLOYMENT_NOT_FOUND = "DEPLOYMENT_NOT_FOUND"
    DEPLOYMENT_IN_PROGRESS = "DEPLOYMENT_IN_PROGRESS"
    HOP_LIMIT_EXCEEDED = "HOP_LIMIT_EXCEEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.AGENT_NOT_FOUND: 404,
    ErrorCode.CLUSTER_NOT_FOUND: 404,
    ErrorCode.AGENT_ALREADY_EXISTS: 409,
    ErrorCode.CLUSTER_EXISTS: 409,
    ErrorCode.INVALID_STATE_TRANSITION: 409,
    ErrorCode.CONCURRENCY_CONFLICT: 409,
    ErrorCode.PRECONDITION_REQUIRED: 428,
    ErrorCode.TOOL_NOT_AVAILABLE: 422,
    ErrorCode.STRATEGY_NOT_AVAILABLE: 422,
    ErrorCode.PROVIDER_NOT_AVAILABLE: 422,
    ErrorCode.SCALING_IN_PROGRESS: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.QUOTA_EXCEEDED: 403,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.BUDGET_EXCEEDED: 402,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.AGENT_NOT_RUNNING: 409,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.SESSION_BUSY: 409,
    ErrorCode.NO_ACTIVE_TURN: 409,
    ErrorCode.EXECUTION_NOT_FOUND: 404,
    ErrorCode.INPUT_NOT_EXPECTED: 409,
    ErrorCode.FILE_NOT_FOUND: 404,
    ErrorCode.PERSONA_NOT_FOUND: 404,
    ErrorCode.PERSONA_EXISTS: 409,
    ErrorCode.PERSONA_READ_ONLY: 409,
    ErrorCode.MESSAGE_DELIVERY_FAILED: 422,
    ErrorCode.PROTOCOL_VIOLATION: 409,
    ErrorCode.MESSAGE_EXPIRED: 409,
    ErrorCode.TASK_NOT_FOUND: 404,
    ErrorCode.RUN_NOT_FOUND: 404,
    ErrorCode.DEPLOYMENT_NOT_FOUND: 404,
    ErrorCode.DEPLOYMENT_IN_PROGRESS: 409,
    ErrorCode.HOP_LIMIT_EXCEEDED: 422,
    ErrorCode.INTERNAL_ERROR: 500,
}


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """An error as a service reports it; the edge adds ``request_id`` and ``trace_id``."""

    code: ErrorCode
    """One of the stable error codes."""
    message: str
    """What went wrong and, where it helps, what to do about it."""
    details: dict[str, Any] | list[Any] | None = None
    """Structured detail, e.g. field-level validation errors."""


class ParleyError(Exception):
    """The root of every refusal Parley reports: a stable code, a message, optional details.

    Services raise it (or a subclass) for anything a caller did wrong or cannot have; the
    command route turns it into an :class:`ErrorBody`, the edge into the API's envelope with
    the HTTP status of :data:`HTTP_STATUS`. Anything else is an internal error.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    @property
    def status(self) -> int:
        """The HTTP status of :attr:`code`."""
        return HTTP_STATUS[self.code]

    def to_body(self) -> ErrorBody:
        """The error as a service replies it."""
        return ErrorBody(code=self.code, message=self.message, details=self.details)
