"""Session commands: open, change settings, set tools, files, delete.

A session for an agent follows the agent's definition; its settings override fields of it,
and its tools must be among the agent's (an agent only uses the tools it was given). An
ad-hoc session carries its whole configuration. Settings are checked against the catalogues
before anything is appended, so a change is applied whole or not at all.
"""

from typing import Any

import msgspec

from parley.aggregates.agent import Agent
from parley.aggregates.session import AttachFile
from parley.aggregates.session import ChangeSettings
from parley.aggregates.session import Delete
from parley.aggregates.session import Open
from parley.aggregates.session import RemoveFile
from parley.aggregates.session import Session
from parley.aggregates.session import SessionCommand
from parley.aggregates.session import decide
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.runtime import CreateSession
from parley.contracts.runtime import DeleteFile
from parley.contracts.runtime import DeleteSession
from parley.contracts.runtime import DeleteSessions
from parley.contracts.runtime import FileUploaded
from parley.contracts.runtime import RuntimeReply
from parley.contracts.runtime import SessionSettings
from parley.contracts.runtime import SetSessionTools
from parley.contracts.runtime import UpdateSession
from parley.contracts.runtime import UploadFile
from parley.contracts.runtime import session_stream
from parley.eventstore import ConcurrencyConflict
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Outcome
from parley.runtime.adapters.files import check_upload
from parley.runtime.decisions import Envelope
from parley.runtime.decisions import execute
from parley.runtime.deps import Deps
from parley.runtime.domain import patched
from parley.runtime.domain import raise_problems
from parley.runtime.domain import settings_problems
from parley.runtime.errors import RuntimeFault

__all__ = ["Sessions", "load_session"]


async def load_session(
    deps: Deps, session_id: str, namespace: str, *, fresh: bool = True
) -> Loaded[Session]:
    """A session folded from its stream (read afresh unless ``fresh`` is False).

    Raises:
        RuntimeFault: ``SESSION_NOT_FOUND`` when absent, deleted or in another namespace.
    """
    loaded = await deps.sessions.load(session_stream(session_id), fresh=fresh)
    session = loaded.state
    if session is None or not session.live_in(namespace):
        if not fresh:
            return await load_session(deps, session_id, namespace)
        raise RuntimeFault(ErrorCode.SESSION_NOT_FOUND, f"no session {session_id!r}")
    return loaded


class Sessions:
    """Handlers of the session commands."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def create(self, cmd: CreateSession) -> RuntimeReply:
        """Open a session for an agent, or an ad-hoc one."""
        if cmd.min_position:
            await self.deps.directory.wait_for(cmd.min_position, 2.0)
        agent = None
        if cmd.agent_id is not None:
            agent = self.deps.directory.get(cmd.agent_id)
            if agent is None or agent.namespace != cmd.namespace:
                raise RuntimeFault(ErrorCode.AGENT_NOT_FOUND, f"no agent {cmd.agent_id!r}")
        await self._check(cmd.namespace, agent, cmd.settings)
        session_id = cmd.session_id or new_id()
        opened = Open(
            session_id=session_id, agent_id=cmd.agent_id, settings=cmd.settings, title=cmd.title
        )
        outcome = await self._execute(session_id, opened, cmd, new=True)
        return _changed(session_id, outcome)

    async def update(self, cmd: UpdateSession) -> RuntimeReply:
        """Change settings; report changed, skipped (same value) and failed fields."""
        session, version = await self._load(cmd.session_id, cmd.namespace, cmd.expected_version)
        updated, changed, skipped = patched(session.settings, cmd.patch)
        try:
            await self._check(cmd.namespace, self._agent(session), updated)
        except RuntimeFault as fault:
            details = fault.details if isinstance(fault.details, dict) else {}
            failed = details.get("errors", [])
            raise RuntimeFault(
                fault.code,
                fault.message,
                {"errors": failed, "changed": [], "skipped": skipped, "failed": failed},
            ) from None
        report: dict[str, Any] = {"changed": changed, "skipped": skipped, "failed": []}
        if not changed:
            return RuntimeReply(ok=True, session_id=session.id, version=version, report=report)
        change = ChangeSettings(namespace=cmd.namespace, settings=updated, changed=changed)
        outcome = await self._execute(session.id, change, cmd, expected_version=version)
        return _changed(session.id, outcome, report)

    async def set_tools(self, cmd: SetSessionTools) -> RuntimeReply:
        """Replace the session's tools."""
        session, version = await self._load(cmd.session_id, cmd.namespace, cmd.expected_version)
        updated = msgspec.structs.replace(session.settings, tools=cmd.tools)
        await self._check(cmd.namespace, self._agent(session), updated)
        change = ChangeSettings(namespace=cmd.namespace, settings=updated, changed=["tools"])
        outcome = await self._execute(session.id, change, cmd, expected_version=version)
        return _changed(session.id, outcome)

    async def delete(self, cmd: DeleteSession) -> RuntimeReply:
        """Delete one session: it leaves every view (its events stay)."""
        session, _ = await self._load(cmd.session_id, cmd.namespace, None)
        outcome = await self._execute(session.id, Delete(namespace=cmd.namespace), cmd)
        for file_id in session.files:
            await self.deps.files.delete(file_id)
        return RuntimeReply(ok=True, session_id=session.id, position=outcome.position)

    async def delete_all(self, cmd: DeleteSessions) -> RuntimeReply:
        """Delete the given sessions of the namespace (the edge lists them from its view)."""
        position = deleted = 0
        for session_id in cmd.session_ids:
            try:
                reply = await self.delete(
                    DeleteSession(namespace=cmd.namespace, session_id=session_id)
                )
            except ParleyError:
                continue  # already gone
            position, deleted = max(position, reply.position), deleted + 1
        return RuntimeReply(ok=True, position=position, report={"deleted": deleted})

    async def upload(self, cmd: UploadFile) -> RuntimeReply:
        """Store a file's bytes, then record ``file.uploaded``."""
        session, _ = await self._load(cmd.session_id, cmd.namespace, None)
        digest = check_upload(
            cmd.name, cmd.content_type, cmd.data, self.deps.settings.max_file_bytes
        )
        file_id = new_id()
        await self.deps.files.put(file_id, cmd.data)
        uploaded = FileUploaded(
            session_id=session.id,
            file_id=file_id,
            name=cmd.name,
            content_type=cmd.content_type,
            size=len(cmd.data),
            sha256=digest,
        )
        outcome = await self._execute(
            session.id, AttachFile(namespace=cmd.namespace, file=uploaded), cmd
        )
        return RuntimeReply(
            ok=True, session_id=session.id, file_id=file_id, position=outcome.position
        )

    async def delete_file(self, cmd: DeleteFile) -> RuntimeReply:
        """Remove a session file."""
        session, _ = await self._load(cmd.session_id, cmd.namespace, None)
        if cmd.file_id not in session.files:
            raise RuntimeFault(ErrorCode.FILE_NOT_FOUND, f"the session has no file {cmd.file_id!r}")
        removal = RemoveFile(namespace=cmd.namespace, file_id=cmd.file_id)
        outcome = await self._execute(session.id, removal, cmd)
        await self.deps.files.delete(cmd.file_id)
        return RuntimeReply(
            ok=True, session_id=session.id, file_id=cmd.file_id, position=outcome.position
        )

    async def _load(
        self, session_id: str, namespace: str, expected_version: int | None
    ) -> tuple[Session, int]:
        loaded = await load_session(self.deps, session_id, namespace)
        assert loaded.state is not None
        if expected_version is not None and loaded.version != expected_version:
            raise ConcurrencyConflict(session_stream(session_id), expected_version, loaded.version)
        return loaded.state, loaded.version

    def _agent(self, session: Session) -> Agent | None:
        return self.deps.directory.get(session.agent_id) if session.agent_id else None

    async def _execute(
        self,
        session_id: str,
        command: SessionCommand,
        cmd: Any,
        *,
        expected_version: int | None = None,
        new: bool = False,
    ) -> Outcome[Session]:
        envelope = Envelope(session_id, cmd.namespace, cmd.request_id, cmd.traceparent)
        executed = await execute(
            self.deps.sessions,
            session_stream(session_id),
            decide,
            command,
            envelope,
            expected_version=expected_version,
            new=new,
        )
        return executed.outcome

    async def _check(self, namespace: str, agent: Agent | None, settings: SessionSettings) -> None:
        persona_problem = None
        if settings.persona is not None:
            try:
                await self.deps.persona_text(namespace, settings.persona)
            except RuntimeFault as fault:
                persona_problem = fault.message
        raise_problems(settings_problems(agent, settings, persona_problem))


def _changed(
    session_id: str, outcome: Outcome[Session], report: dict[str, Any] | None = None
) -> RuntimeReply:
    """The reply to a command that opened or changed the session: where it now stands."""
    return RuntimeReply(
        ok=True,
        session_id=session_id,
        version=outcome.version,
        position=outcome.position,
        report=report,
    )
