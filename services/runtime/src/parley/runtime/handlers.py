"""The runtime's command table: each verb's command type and its (thin) handler.

Commands arrive on ``parley.cmd.runtime.<verb>`` (queue group ``parley-runtime``); each
handler gets a decoded command and returns a :class:`RuntimeReply`; every exception becomes
an error reply in one place (:func:`parley.runtime.errors.reply_for_error`).
"""

from parley.contracts.memory import SearchMemory
from parley.contracts.runtime import CancelExecution
from parley.contracts.runtime import CancelTurn
from parley.contracts.runtime import Chat
from parley.contracts.runtime import CreateSession
from parley.contracts.runtime import DeleteFile
from parley.contracts.runtime import DeleteSession
from parley.contracts.runtime import DeleteSessions
from parley.contracts.runtime import ExecutionInput
from parley.contracts.runtime import SetSessionTools
from parley.contracts.runtime import TriggerExecution
from parley.contracts.runtime import UpdateSession
from parley.contracts.runtime import UploadFile
from parley.kit.app import Route
from parley.runtime.adapters.memory import search_memory
from parley.runtime.deps import Deps
from parley.runtime.executions import ExecutionCommands
from parley.runtime.sessions import Sessions
from parley.runtime.turns import Turns
from parley.runtime.workers.executions import ExecutionWorker
from parley.runtime.workers.inbox import Inbox
from parley.runtime.workers.scheduler import Scheduler

__all__ = ["ROUTES", "Runtime"]


class Runtime:
    """The process's handlers and workers, built once its connections are open."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.turns = Turns(deps)
        self.sessions = Sessions(deps)
        self.executions = ExecutionCommands(deps)
        self.worker = ExecutionWorker(deps)
        self.scheduler = Scheduler(deps, self.executions)
        self.inbox = Inbox(deps, self.turns)


ROUTES: dict[str, Route[Runtime]] = {
    "create_session": (CreateSession, lambda r, c: r.sessions.create(c)),
    "update_session": (UpdateSession, lambda r, c: r.sessions.update(c)),
    "set_session_tools": (SetSessionTools, lambda r, c: r.sessions.set_tools(c)),
    "delete_session": (DeleteSession, lambda r, c: r.sessions.delete(c)),
    "delete_sessions": (DeleteSessions, lambda r, c: r.sessions.delete_all(c)),
    "upload_file": (UploadFile, lambda r, c: r.sessions.upload(c)),
    "delete_file": (DeleteFile, lambda r, c: r.sessions.delete_file(c)),
    "chat": (Chat, lambda r, c: r.turns.chat(c)),
    "cancel_turn": (CancelTurn, lambda r, c: r.turns.cancel(c)),
    "trigger_execution": (TriggerExecution, lambda r, c: r.executions.trigger(c)),
    "execution_input": (ExecutionInput, lambda r, c: r.executions.answer(c)),
    "cancel_execution": (CancelExecution, lambda r, c: r.executions.cancel(c)),
    "search_memory": (SearchMemory, lambda r, c: search_memory(r.deps, c)),
}
"""Verb → (command type, handler)."""
