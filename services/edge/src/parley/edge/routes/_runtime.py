"""What the runtime routes share: sending a command with read-your-writes, and lookups that
answer 404 before anything is sent."""

import re
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from parley.contracts.errors import ErrorCode
from parley.contracts.registry import AgentView
from parley.contracts.runtime import RuntimeReply
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.runtime_views import ExecutionView, SessionDetail
from parley.edge.request_ids import request_id

__all__ = [
    "error_responses",
    "require_agent",
    "require_execution",
    "require_session",
    "send",
]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses: the error envelope for each status in ``codes``."""
    return {
        code: ResponseSpec(ErrorEnvelope, description="Error envelope", generate_examples=False)
        for code in codes
    }


async def send(
    request: ASGIConnection[Any, Any, Any, Any],
    state: State,
    verb: str,
    command: msgspec.Struct,
    *,
    within: float | None = None,
    strict: bool = True,
    wait: bool = True,
) -> RuntimeReply:
    """Send a runtime command, then wait until this edge's runtime view has its effect.

    Args:
        request: The HTTP request or WebSocket (for its id and trace context).
        state: The app state.
        verb: The runtime verb, e.g. ``create_session``.
        command: The command.
        within: Seconds to wait for the reply (default: the command timeout).
        strict: Raise ``TIMEOUT`` when the view lags; otherwise answer anyway (for replies
            that carry the result themselves, such as a finished chat turn).
        wait: Whether to wait for the view at all (not for a streamed turn: its stream is
            the answer, and the first token should not wait for a projection).

    Raises:
        ApiError: the runtime's error, or the command client's.
    """
    if getattr(command, "request_id", "") is None:
        command.request_id = request_id(request.scope)  # type: ignore[attr-defined]
    reply: RuntimeReply = await state.commands.send_runtime(
        verb,
        command,
        request_id=request_id(request.scope),
        traceparent=request.headers.get("traceparent"),
        within=within,
    )
    if not wait:
        return reply
    view: RuntimeProjection = state.runtime
    seen = await view.wait_for(reply.position, state.settings.read_your_writes_timeout)
    if not seen and strict:
        raise ApiError(
            ErrorCode.TIMEOUT,
            "the change was recorded but is not visible yet; read the resource again shortly",
            {"position": reply.position, "version": reply.version},
        )
    return reply


def require_agent(state: State, namespace: str, agent_id: str) -> AgentView:
    """The live agent ``agent_id``, or ``404 AGENT_NOT_FOUND``."""
    view = state.projection.get(namespace, agent_id) if _ID.match(agent_id) else None
    if view is None:
        raise ApiError(
            ErrorCode.AGENT_NOT_FOUND,
            f"no agent {agent_id[:64]} in namespace {namespace}",
            {"agent_id": agent_id[:64]},
        )
    return view


def require_session(
    state: State, namespace: str, session_id: str, *, agent_id: str | None = None
) -> SessionDetail:
    """The live session ``session_id`` (of ``agent_id`` when given), or ``404
    SESSION_NOT_FOUND``."""
    view = state.runtime.session(namespace, session_id) if _ID.match(session_id) else None
    if view is not None and agent_id is not None and view.agent_id != agent_id:
        view = None  # another agent's conversation does not exist for this one
    if view is None:
        raise ApiError(
            ErrorCode.SESSION_NOT_FOUND,
            f"no session {session_id[:64]} in namespace {namespace}",
            {"session_id": session_id[:64]},
        )
    return view  # type: ignore[no-any-return]


def require_execution(
    state: State, namespace: str, agent_id: str, execution_id: str
) -> ExecutionView:
    """The execution ``execution_id`` of ``agent_id``, or ``404 EXECUTION_NOT_FOUND``."""
    view = (
        state.runtime.execution(namespace, agent_id, execution_id)
        if _ID.match(execution_id)
        else None
    )
    if view is None:
        raise ApiError(
            ErrorCode.EXECUTION_NOT_FOUND,
            f"agent {agent_id[:64]} has no execution {execution_id[:64]}",
            {"execution_id": execution_id[:64]},
        )
    return view  # type: ignore[no-any-return]
