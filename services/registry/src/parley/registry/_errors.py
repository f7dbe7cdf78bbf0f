"""The registry's errors: one root, and the domain error every decider raises."""

from typing import Any

from parley.contracts.errors import ErrorBody, ErrorCode

__all__ = ["DomainError", "RegistryError"]


class RegistryError(Exception):
    """Root of every error the registry raises."""


class DomainError(RegistryError):
    """A command the domain refuses; carries the API error code it maps to.

    Args:
        code: The stable error code the edge reports.
        message: What went wrong and, where it helps, what to do about it.
        details: Structured detail, e.g. ``{"errors": [{"field": ..., "message": ...}]}``.
    """

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_body(self) -> ErrorBody:
        """The error as a command reply carries it."""
        return ErrorBody(code=self.code, message=self.message, details=self.details)

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r}, details={self.details!r})"
