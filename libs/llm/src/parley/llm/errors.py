"""Typed provider errors: one root, subclasses with structured fields.

Adapters translate SDK exceptions into these; callers never see an SDK type. Messages carry
the provider's reason (status, error type, its own message) and never a credential.
"""

from __future__ import annotations

from parley.llm.port import Usage

__all__ = [
    "ProviderAuthError",
    "ProviderBadRequest",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "StreamInterrupted",
]


class ProviderError(Exception):
    """Root of every error a provider adapter raises.

    Args:
        provider: Name of the provider (``"anthropic"``, ``"openai"``, …).
        message: What went wrong, with the provider's own reason when it gave one.
        status: HTTP status of the failed response, if there was one.
        retryable: Whether the same request may succeed when tried again.
        retry_after: Seconds the provider asked us to wait before retrying.
    """

    default_retryable = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, message={self.message!r}, "
            f"status={self.status!r}, retryable={self.retryable!r}, "
            f"retry_after={self.retry_after!r})"
        )


class ProviderRateLimited(ProviderError):
    """The provider throttled us (429); honour ``retry_after``."""

    default_retryable = True


class ProviderUnavailable(ProviderError):
    """The provider is down or overloaded (5xx, 529), or our circuit to it is open."""

    default_retryable = True


class ProviderTimeout(ProviderError):
    """Connecting took longer than the connect timeout, or no byte came within the idle one."""

    default_retryable = True


class ProviderAuthError(ProviderError):
    """The credential is missing, wrong or lacks permission (401/403): fix the key."""


class ProviderBadRequest(ProviderError):
    """The provider rejected the request itself (400/404/413/422): retrying will not help."""


class StreamInterrupted(ProviderError):
    """The stream failed after it had started; the turn ends as ``interrupted``.

    Args:
        provider: Name of the provider.
        message: The reason, usually that of the underlying error.
        partial_text: Text streamed before the failure.
        usage: Estimated usage (input from the request, output from the partial text).
        cause: The typed error that ended the stream, if any.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        partial_text: str = "",
        usage: Usage | None = None,
        cause: ProviderError | None = None,
    ) -> None:
        super().__init__(provider, message, status=cause.status if cause else None, retryable=False)
        self.partial_text = partial_text
        self.usage = usage
        self.cause = cause
