"""Session commands: open, change settings, set tools, files, delete.

A session for an agent follows the agent's definition; its settings override fields of it,
and its tools must be among the agent's (an agent only uses the tools it was given). An
ad-hoc session carries its whole configuration. Settings are checked against the catalogues
before anything is appended, so a change is applied whole or not at all.
"""

from typing import Any

import msgspec

from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.run_settings import run_settings_problems
from parley.contracts.runtime import (
    CreateSession,
    DeleteFile,
    DeleteSession,
    DeleteSessions,
    FileDeleted,
    FileUploaded,
    RuntimeReply,
    SessionCreated,
    SessionDeleted,
    SessionSettings,
    SessionSettingsChanged,
    SetSessionTools,
    UpdateSession,
    UploadFile,
    session_stream,
)
from parley.eventstore import NO_STREAM, ConcurrencyConflict
from parley.kit.telemetry import current_traceparent
from parley.runtime.chat import SessionCache, load_session
from parley.runtime.context import Deps, StreamRecorder, effective
from parley.runtime.errors import RuntimeFault
from parley.runtime.files import check_upload
from parley.runtime.session import Session

__all__ = ["Sessions"]

_PATCH_FIELDS = tuple(f.name for f in msgspec.structs.fields(SessionSettings))


class Sessions:
    """Handlers of the session commands."""

    def __init__(self, deps: Deps, cache: SessionCache | None = None) -> None:
        self.deps = deps
        self.cache = cache
        """The chat turns' cache, kept current with what these commands append."""

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
        recorder = self._recorder(session_id, cmd, NO_STREAM)
        try:
            await recorder.record(
                "session.created",
                SessionCreated(
                    session_id=session_id,
                    agent_id=cmd.agent_id,
                    settings=cmd.settings,
                    title=cmd.title,
                ),
            )
        except ConcurrencyConflict:
            raise RuntimeFault(
                ErrorCode.CONCURRENCY_CONFLICT, f"session {session_id!r} already exists"
            ) from None
        return RuntimeReply(
            ok=True,
            session_id=session_id,
            version=recorder.version or 1,
            position=recorder.position,
        )

    async def update(self, cmd: UpdateSession) -> RuntimeReply:
        """Change settings; report changed, skipped (same value) and failed fields."""
        session, version = await self._load(cmd.session_id, cmd.namespace, cmd.expected_version)
        current = msgspec.structs.asdict(session.settings)
        wanted = {
            name: getattr(cmd.patch, name)
            for name in _PATCH_FIELDS
            if getattr(cmd.patch, name, None) is not None
        }
        changed = [n for n, v in wanted.items() if current.get(n) != v]
        skipped = [n for n in wanted if n not in changed]
        updated = msgspec.structs.replace(session.settings, **{n: wanted[n] for n in changed})
        agent = self.deps.directory.get(session.agent_id) if session.agent_id else None
        try:
            await self._check(cmd.namespace, agent, updated)
        except RuntimeFault as fault:
            failed = (fault.details or {}).get("errors", [])
            raise RuntimeFault(
                fault.code,
                fault.message,
                {"errors": failed, "changed": [], "skipped": skipped, "failed": failed},
            ) from None
        report: dict[str, Any] = {"changed": changed, "skipped": skipped, "failed": []}
        if not changed:
            return RuntimeReply(ok=True, session_id=session.id, version=version, report=report)
        recorder = self._recorder(session.id, cmd, version)
        await recorder.record(
            "session.settings_changed",
            SessionSettingsChanged(session_id=session.id, settings=updated, changed=changed),
        )
        return RuntimeReply(
            ok=True,
            session_id=session.id,
            version=recorder.version or version,
            position=recorder.position,
            report=report,
        )

    async def set_tools(self, cmd: SetSessionTools) -> RuntimeReply:
        """Replace the session's tools."""
        session, version = await self._load(cmd.session_id, cmd.namespace, cmd.expected_version)
        updated = msgspec.structs.replace(session.settings, tools=cmd.tools)
        agent = self.deps.directory.get(session.agent_id) if session.agent_id else None
        await self._check(cmd.namespace, agent, updated)
        recorder = self._recorder(session.id, cmd, version)
        await recorder.record(
            "session.settings_changed",
            SessionSettingsChanged(session_id=session.id, settings=updated, changed=["tools"]),
        )
        return RuntimeReply(
            ok=True,
            session_id=session.id,
            version=recorder.version or 0,
            position=recorder.position,
        )

    async def delete(self, cmd: DeleteSession) -> RuntimeReply:
        """Delete one session: it leaves every view (its events stay)."""
        session, version = await self._load(cmd.session_id, cmd.namespace, None)
        recorder = self._recorder(session.id, cmd, None)
        await recorder.record("session.deleted", SessionDeleted(session_id=session.id))
        for file_id in session.files:
            await self.deps.files.delete(file_id)
        return RuntimeReply(ok=True, session_id=session.id, position=recorder.position)

    async def delete_all(self, cmd: DeleteSessions) -> RuntimeReply:
        """Delete the given sessions of the namespace (the edge lists them from its view)."""
        position = deleted = 0
        for session_id in cmd.session_ids:
            try:
                reply = await self.delete(
                    DeleteSession(namespace=cmd.namespace, session_id=session_id)
                )
            except RuntimeFault:
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
        recorder = self._recorder(session.id, cmd, None)
        await recorder.record(
            "file.uploaded",
            FileUploaded(
                session_id=session.id,
                file_id=file_id,
                name=cmd.name,
                content_type=cmd.content_type,
                size=len(cmd.data),
                sha256=digest,
            ),
        )
        return RuntimeReply(
            ok=True, session_id=session.id, file_id=file_id, position=recorder.position
        )

    async def delete_file(self, cmd: DeleteFile) -> RuntimeReply:
        """Remove a session file."""
        session, _ = await self._load(cmd.session_id, cmd.namespace, None)
        if cmd.file_id not in session.files:
            raise RuntimeFault(ErrorCode.FILE_NOT_FOUND, f"the session has no file {cmd.file_id!r}")
        recorder = self._recorder(session.id, cmd, None)
        await recorder.record(
            "file.deleted", FileDeleted(session_id=session.id, file_id=cmd.file_id)
        )
        await self.deps.files.delete(cmd.file_id)
        return RuntimeReply(
            ok=True, session_id=session.id, file_id=cmd.file_id, position=recorder.position
        )

    async def _load(
        self, session_id: str, namespace: str, expected_version: int | None
    ) -> tuple[Session, int]:
        loaded = await load_session(self.deps, session_id, namespace)
        assert loaded.state is not None
        if expected_version is not None and loaded.version != expected_version:
            raise ConcurrencyConflict(session_stream(session_id), expected_version, loaded.version)
        return loaded.state, loaded.version

    async def _check(self, namespace: str, agent: Any, settings: SessionSettings) -> None:
        eff = effective(agent, settings)
        problems = run_settings_problems(
            provider=eff.provider,
            model=eff.model,
            params=eff.params,
            tools=eff.tools,
            strategy=eff.strategy,
        )
        if agent is not None and settings.tools is not None:
            allowed = {t.name for t in agent.spec.tools}
            for i, tool in enumerate(settings.tools):
                if tool.name not in allowed:
                    problems.append(
                        {
                            "field": f"tools[{i}].name",
                            "code": ErrorCode.TOOL_NOT_AVAILABLE.value,
                            "message": f"tool {tool.name!r} is not among the agent's tools"
                            f" ({', '.join(sorted(allowed)) or 'none'})",
                        }
                    )
        if settings.persona is not None:
            try:
                await self.deps.persona_text(namespace, settings.persona)
            except RuntimeFault as fault:
                problems.append(
                    {"field": "persona", "code": fault.code.value, "message": fault.message}
                )
        if settings.persona is not None and settings.system_prompt is not None:
            problems.append(
                {
                    "field": "persona",
                    "code": ErrorCode.VALIDATION_ERROR.value,
                    "message": "set system_prompt or persona, not both",
                }
            )
        if problems:
            first = problems[0]
            message = f"{first['field']}: {first['message']}"
            if len(problems) > 1:
                message += f" (and {len(problems) - 1} more)"
            raise RuntimeFault(ErrorCode(first["code"]), message, {"errors": problems})

    def _recorder(self, session_id: str, cmd: Any, expected: int | None) -> StreamRecorder:
        recorder = StreamRecorder(
            self.deps.store,
            session_stream(session_id),
            subject=session_id,
            namespace=cmd.namespace,
            correlation_id=cmd.request_id,
            traceparent=cmd.traceparent or current_traceparent(),
            expected_version=expected,
        )
        if self.cache is not None:
            recorder.on_recorded = self.cache.recorded
        return recorder
