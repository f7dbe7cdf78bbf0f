"""The one mapping from an exception to the tasks service's error reply."""

import logging

from parley.contracts.errors import ErrorBody
from parley.kit.errors import error_body_for
from parley.tasks.task import TaskRefusal

__all__ = ["TaskRefusal", "error_body"]

log = logging.getLogger(__name__)


def error_body(exc: BaseException) -> ErrorBody:
    """The error body for an exception raised while handling a command."""
    if isinstance(exc, TaskRefusal):
        return ErrorBody(code=exc.code, message=exc.message)
    return error_body_for(exc, log=log)
