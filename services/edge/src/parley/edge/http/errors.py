"""API errors and their one mapping to the error envelope.

Every handler raises a :class:`~parley.contracts.errors.ParleyError` (:class:`ApiError` when it
carries headers) or lets a known exception propagate; the exception handlers registered by the
app turn it into
``{"error": {"code", "message", "details", "request_id", "trace_id"}}``. Anything else is a
``500 INTERNAL_ERROR`` whose details stay in the log, never in the response. A client that
hung up before its body arrived is not a server error: it is logged at debug level and
answered ``499`` (nobody reads it).
"""

import logging
from typing import Any

import msgspec
from litestar import Request
from litestar import Response
from litestar.exceptions import HTTPException
from litestar.exceptions import MethodNotAllowedException
from litestar.exceptions import NotFoundException
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from parley.contracts.errors import HTTP_STATUS
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.http.request_ids import REQUEST_ID_HEADER
from parley.edge.http.request_ids import request_id
from parley.edge.http.request_ids import trace_id

__all__ = [
    "ApiError",
    "ErrorEnvelope",
    "ErrorInfo",
    "error_details",
    "error_responses",
    "exception_handlers",
    "invalid",
    "invalid_fields",
    "invalid_value",
    "not_found",
]

log = logging.getLogger(__name__)


class ApiError(ParleyError):
    """A :class:`ParleyError` with response headers (e.g. ``Retry-After``)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | list[Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.headers = headers or {}

    @classmethod
    def from_body(cls, body: ErrorBody) -> "ApiError":
        """The API error for an error a service replied with."""
        return cls(body.code, body.message, body.details)


def not_found(
    code: ErrorCode, kind: str, key: str, ident: str, namespace: str, *, quote: bool = False
) -> ParleyError:
    """``404``: no ``kind`` ``ident`` in ``namespace`` (details ``{key: ident}``)."""
    shown = repr(ident[:64]) if quote else ident[:64]
    return ParleyError(code, f"no {kind} {shown} in namespace {namespace}", {key: ident[:64]})


def invalid(field: str, message: str) -> ParleyError:
    """``422 VALIDATION_ERROR`` for ``field`` (e.g. ``query.status``)."""
    return ParleyError(
        ErrorCode.VALIDATION_ERROR,
        f"invalid {field}: {message}",
        {"errors": [{"field": field, "message": message}]},
    )


def invalid_value(name: str, value: str, message: str) -> ParleyError:
    """``422 VALIDATION_ERROR`` for the query parameter ``name`` given as ``value``."""
    return ParleyError(
        ErrorCode.VALIDATION_ERROR,
        f"invalid {name} {value[:40]!r}: {message}",
        {"errors": [{"field": f"query.{name}", "message": message}]},
    )


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses: the error envelope for each status in ``codes``."""
    return {
        code: ResponseSpec(ErrorEnvelope, description="Error envelope", generate_examples=False)
        for code in codes
    }


class ErrorInfo(msgspec.Struct, kw_only=True):
    """An error as the API reports it."""

    code: ErrorCode
    """Stable error code."""
    message: str
    """What went wrong and, where it helps, what to do about it."""
    details: dict[str, Any] | None = None
    """Structured detail; for invalid input `{"errors": [{"field": "body.name", "message"}]}`."""
    request_id: str
    """Id of the request (also in the `X-Request-Id` header)."""
    trace_id: str
    """W3C trace id of the request."""


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every error response: `{"error": {...}}`."""

    error: ErrorInfo


def invalid_fields(
    exc: msgspec.ValidationError, location: str, what: str | None = None
) -> ParleyError:
    """``422 VALIDATION_ERROR`` for a msgspec validation error of the input at ``location``
    (``invalid <what>: …``, ``what`` defaulting to ``location``), its field in
    ``{"errors": [{"field", "message"}]}`` (``$.a.b`` → ``body.a.b``)."""
    text = str(exc)
    message, sep, path = text.rpartition(" - at `")
    field = location + path.rstrip("`").removeprefix("$") if sep else location
    errors = [{"field": field, "message": message if sep else text}]
    return ParleyError(
        ErrorCode.VALIDATION_ERROR, f"invalid {what or location}: {exc}", {"errors": errors}
    )


def error_details(details: dict[str, Any] | list[Any] | None) -> dict[str, Any] | None:
    """``error.details`` in its one shape: an object; a bare list (field errors, as a service
    may reply them) becomes ``{"errors": [...]}``."""
    return {"errors": details} if isinstance(details, list) else details


_CLIENT_GONE = "client disconnected prematurely"
"""What Litestar's ``InternalServerException`` says when the client hung up mid-body."""

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
            details=error_details(details),
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


def _parley_error(request: Request[Any, Any, Any], exc: ParleyError) -> Response[ErrorEnvelope]:
    headers = exc.headers if isinstance(exc, ApiError) else None
    return _envelope(request, exc.code, exc.message, exc.details, headers)


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
    if status == 500 and exc.detail == _CLIENT_GONE:
        log.debug("client went away during %s %s", request.method, request.url.path)
        return _envelope(request, ErrorCode.INVALID_REQUEST, "client disconnected", status=499)
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
    ParleyError: _parley_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""The app's exception handlers: the one place errors become envelopes."""
