"""What a tool is: its declaration, the context a call runs in, its outcome and its errors.

A built-in tool is one ``async`` function declared with :func:`builtin`, which pairs it with
its catalogue entry and its config and argument Structs; nothing else about a tool is written
twice.
"""

from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Generic
from typing import Protocol
from typing import TypeVar

import msgspec

from parley.contracts.memory import MemoryWrite
from parley.contracts.tools import TOOL_CATALOGUE
from parley.contracts.tools import SendMessageArgs
from parley.contracts.tools import ToolDescriptor

__all__ = [
    "FileReader",
    "MemoryAccess",
    "Messenger",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "builtin",
    "utcnow",
]

A = TypeVar("A")
C = TypeVar("C")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class ToolError(Exception):
    """An expected failure of a tool call, reported to the model and recorded.

    Codes: ``invalid_arguments``, ``refused`` (a policy said no), ``timeout``, ``too_large``,
    ``not_found``, ``failed``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class FileReader(Protocol):
    """The session files a tool may read."""

    async def read(self, name_or_id: str) -> tuple[str, str, bytes]:
        """``(file name, content type, bytes)``; raises ``ToolError("not_found")`` if absent."""
        ...


class Messenger(Protocol):
    """Sends an agent's FIPA-ACL message (the `send_message` tool's way out)."""

    async def send(self, message: SendMessageArgs) -> dict[str, Any]:
        """Send ``message`` and (when its ``wait_seconds``) wait; the outcome as plain data.

        Raises:
            ToolError: ``refused`` when the platform refused the message.
        """
        ...


class MemoryAccess(Protocol):
    """The agent's memory (the `remember` and `recall` tools' way in)."""

    async def remember(self, write: MemoryWrite) -> dict[str, Any]:
        """Record ``write``; what was recorded, as plain data.

        Raises:
            ToolError: ``refused`` or ``invalid_arguments`` when the registry refused it,
                ``failed`` when it is unreachable.
        """
        ...

    async def recall(self, query: str, limit: int) -> dict[str, Any]:
        """Up to ``limit`` entities nearest ``query``, best first, as plain data."""
        ...


@dataclass(frozen=True)
class ToolContext:
    """Where a call runs: the agent and session it serves, and what it may reach."""

    namespace: str
    """Tenant of the agent."""
    agent_id: str | None
    """The agent making the call, if any."""
    session_id: str | None
    """The session of the call, if any."""
    files: FileReader | None
    """The session's files (None when the call has no session)."""
    now: Callable[[], datetime] = utcnow
    """Clock (aware UTC datetimes); tests pass a fixed one."""
    messenger: Messenger | None = None
    """How the agent sends messages (None where it cannot, e.g. in a unit test)."""
    memory: MemoryAccess | None = None
    """The agent's memory (None without ``memory.enabled``)."""


class ToolOutcome(msgspec.Struct, frozen=True):
    """The result of a successful call."""

    content: str
    """Text given back to the model (JSON text for structured results)."""
    data: Any = None
    """Structured result, recorded in the `tool.completed` event."""


@dataclass(frozen=True)
class Tool(Generic[A, C]):
    """A built-in tool: its descriptor, its argument and config types, and ``run``."""

    descriptor: ToolDescriptor
    """Name, description and schemas (from the contracts' catalogue)."""
    arguments_type: type[A]
    """Struct of the call arguments."""
    config_type: type[C]
    """Struct of the tool's config."""
    run: Callable[[A, C, ToolContext], Awaitable[ToolOutcome]]
    """Run one call with validated arguments and config; raises :class:`ToolError` for every
    expected failure."""


def builtin(
    name: str, arguments_type: type[A], config_type: type[C]
) -> Callable[[Callable[[A, C, ToolContext], Awaitable[ToolOutcome]]], Tool[A, C]]:
    """Declare ``run`` as the tool ``name`` of the contracts' ``TOOL_CATALOGUE``."""

    def declare(run: Callable[[A, C, ToolContext], Awaitable[ToolOutcome]]) -> Tool[A, C]:
        return Tool(TOOL_CATALOGUE[name], arguments_type, config_type, run)

    return declare
