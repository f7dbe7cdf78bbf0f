"""Translate an HTTP failure (status, provider error type, message) into a typed error."""

from __future__ import annotations

from collections.abc import Mapping

from parley.llm._base import parse_retry_after
from parley.llm.errors import ProviderAuthError
from parley.llm.errors import ProviderBadRequest
from parley.llm.errors import ProviderError
from parley.llm.errors import ProviderRateLimited
from parley.llm.errors import ProviderTimeout
from parley.llm.errors import ProviderUnavailable

__all__ = ["error_for_status"]

_BY_TYPE: dict[str, type[ProviderError]] = {
    "overloaded_error": ProviderUnavailable,
    "api_error": ProviderUnavailable,
    "server_error": ProviderUnavailable,
    "rate_limit_error": ProviderRateLimited,
    "rate_limit_exceeded": ProviderRateLimited,
    "authentication_error": ProviderAuthError,
    "permission_error": ProviderAuthError,
    "invalid_request_error": ProviderBadRequest,
    "timeout_error": ProviderTimeout,
}


def error_for_status(
    provider: str,
    status: int,
    error_type: str | None,
    reason: str | None,
    headers: Mapping[str, str],
) -> ProviderError:
    """Build the typed error for a failed response or an in-stream error event.

    Args:
        provider: Provider name.
        status: HTTP status (200 for an error event inside a started stream).
        error_type: The provider's error type (``overloaded_error``, ``rate_limit_error``…).
        reason: The provider's human-readable message.
        headers: Response headers (for ``retry-after``).
    """
    message = f"HTTP {status}"
    if error_type:
        message += f" {error_type}"
    if reason:
        message += f": {reason}"
    retry_after = parse_retry_after(headers)
    cls: type[ProviderError]
    if status == 429:
        cls = ProviderRateLimited
    elif status in (401, 403):
        cls = ProviderAuthError
    elif status in (408, 504):
        cls = ProviderTimeout
    elif status >= 500:
        cls = ProviderUnavailable
    elif status >= 400 and error_type not in _BY_TYPE:
        cls = ProviderBadRequest
    else:
        cls = _BY_TYPE.get(error_type or "", ProviderUnavailable)
    return cls(provider, message, status=status, retry_after=retry_after)
