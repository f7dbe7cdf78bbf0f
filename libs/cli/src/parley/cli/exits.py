"""Exit codes scripts can rely on, and the one error every command raises to end with one.

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | the server failed (5xx, unreachable, rate limited), or what was watched failed |
| 2 | the command line is wrong, or the server refused the input (400, 413, 415, 422) |
| 3 | not found (404) |
| 4 | not allowed: no, bad, expired or revoked key (401), or a role without the action (403) |
| 5 | conflict (409): a state transition, a stale version, a name in use, busy |
| 6 | timed out: nothing came within the wait (`send --wait`, 504) |
| 130 | interrupted (Ctrl-C) |
"""

from enum import IntEnum
from typing import Any

__all__ = ["CliFailure", "Exit", "exit_for_status"]


class Exit(IntEnum):
    """What a ``parley`` process exits with."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    AUTH = 4
    CONFLICT = 5
    TIMEOUT = 6
    INTERRUPTED = 130


_BY_STATUS = {
    400: Exit.USAGE,
    401: Exit.AUTH,
    403: Exit.AUTH,
    404: Exit.NOT_FOUND,
    409: Exit.CONFLICT,
    413: Exit.USAGE,
    415: Exit.USAGE,
    422: Exit.USAGE,
    504: Exit.TIMEOUT,
}


def exit_for_status(status: int) -> Exit:
    """The exit code of an HTTP error status."""
    return _BY_STATUS.get(status, Exit.FAILED)


class CliFailure(Exception):
    """A command ends unsuccessfully: ``parley: <code>: <message>`` on stderr, then ``exit``.

    Args:
        code: the server's error code (``AGENT_NOT_FOUND``) or the CLI's own (``BAD_FILE``).
        message: what went wrong, and where possible what to do.
        exit: the process's exit code.
        details: the server's `error.details`, shown where they help (field errors: a list, or
            an object with `errors`).
    """

    def __init__(self, code: str, message: str, exit: Exit, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.exit = code, message, exit
        self.details = details

    def lines(self) -> list[str]:
        """What is printed on stderr: the code and message, then each field error."""
        shown = [f"parley: {self.code}: {self.message}"]
        errors = self.details.get("errors") if isinstance(self.details, dict) else self.details
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, dict):
                shown.append(f"  {error.get('field', '?')}: {error.get('message', '')}")
        return shown
