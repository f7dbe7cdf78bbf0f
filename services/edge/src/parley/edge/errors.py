"""API errors and their one mapping to the error envelope.

Every handler raises :class:`ApiError` (or lets a known exception propagate); the exception
handlers registered by the app turn it into
``{"error": {"code", "message", "details", "request_id", "trace_id"}}``. Anything else is a
``500 INTERNAL_ERROR`` whose details stay in the log, never in the response.
"""

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from parley.contracts.errors import HTTP_STATUS, ErrorBody, ErrorCode
from parley.edge.request_ids import REQUEST_ID_HEADER, request_id, trace_id

__all__ = ["ApiError", "ErrorEnvelope", "ErrorInfo", "exception_handlers", "field_errors"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports in its envelope, with the status of its code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | list[Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        """HTTP status of this error's code."""
        return HTTP_STATUS[self.code]

    @classmethod
    def from_body(cls, body: ErrorBody) -> "ApiError":
        """The API error for an error a service replied with."""
        return cls(body.code, body.message, body.details)


class ErrorInfo(msgspec.Struct, kw_only=True):
    """An error as the API reports it."""

    code: ErrorCode
    """Stable error code."""
    message: str
    """What went wrong and, where it helps, what to do about it."""
    details: dict[str, Any] | list[Any] | None = None
    """Structured detail, e.g. `[{"field": "body.name", "message": ...}]`."""
    request_id: str
    """Id of the request (also in the `X-Request-Id` header)."""
    trace_id: str
    """W3C trace id of the request."""


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every error response: `{"error": {...}}`."""

    error: ErrorInfo


def field_errors(exc: msgspec.ValidationError, location: str) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` for a msgspec validation error (``$.a.b`` → ``body.a.b``)."""
    text = str(exc)
    message, sep, path = text.rpartition(" - at `")
    if not sep:
        return [{"field": location, "message": text}]
    path = path.rstrip("`")
    return [{"field": location + path.removeprefix("$"), "message": message}]


_STATUS_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
    504: ErrorCode.TIMEOUT,
}


def _envelope(
    request: Request[Any, Any, Any],
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> Response[ErrorEnvelope]:
    rid = request_id(request.scope)
    body = ErrorEnvelope(
        error=ErrorInfo(
            code=code,
            message=message,
            details=details,
            request_id=rid,
            trace_id=trace_id(request.scope),
        )
    )
    return Response(
        body,
        status_code=status or HTTP_STATUS[code],
        headers={**(headers or {}), REQUEST_ID_HEADER: rid},
        media_type="application/json",
    )


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorEnvelope]:
    return _envelope(request, exc.code, exc.message, exc.details, exc.headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorEnvelope]:
    if isinstance(exc, ValidationException):
        details = [
            {
                "field": ".".join(
                    str(getattr(part, "value", part))
                    for part in (item.get("source") or "request", item.get("key"))
                    if part
                ),
                "message": str(item.get("message", "")),
            }
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        return _envelope(
            request, ErrorCode.VALIDATION_ERROR, "invalid request parameters", details or None
        )
    if isinstance(exc, NotFoundException):
        return _envelope(
            request, ErrorCode.NOT_FOUND, f"no such resource: {request.url.path}", status=404
        )
    if isinstance(exc, MethodNotAllowedException):
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        return _envelope(
            request,
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on {request.url.path}"
            + (f"; use {allowed}" if allowed else ""),
            headers=dict(exc.headers or {}),
        )
    status = exc.status_code
    if status >= 500:
        if status not in _STATUS_CODES:
            log.error(
                "server error %s on %s %s: %s", status, request.method, request.url.path, exc.detail
            )
            return _envelope(request, ErrorCode.INTERNAL_ERROR, "internal error", status=500)
    code = _STATUS_CODES.get(status, ErrorCode.INVALID_REQUEST)
    message = exc.detail if status < 500 else "service unavailable"
    if status == 413:
        message = "request body is too large"
    return _envelope(request, code, message, headers=dict(exc.headers or {}), status=status)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"request_id": request_id(request.scope)},
    )
    return _envelope(
        request,
        ErrorCode.INTERNAL_ERROR,
        "internal error; quote the request_id when reporting it",
    )


exception_handlers: ExceptionHandlersMap = {
    ApiError: _api_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""The app's exception handlers: the one place errors become envelopes."""
