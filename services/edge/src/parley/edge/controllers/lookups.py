"""Lookups the controllers share: a resource from its projection, or its `404`, answered
before any command is sent; and the scopes of the routes under one agent or one session."""

import re

from litestar.di import Provide

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import ID_PATTERN
from parley.contracts.registry import AgentView
from parley.edge.controllers.resources import Scope
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import not_found
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.runtime_views import ExecutionView
from parley.edge.projections.runtime_views import SessionDetail
from parley.edge.projections.runtime_views import SessionView

__all__ = [
    "ID",
    "AGENT_SCOPE",
    "SESSION_SCOPE",
    "AgentScope",
    "SessionScope",
    "agent_not_found",
    "require_agent",
    "require_execution",
    "require_session",
]

ID = re.compile(ID_PATTERN)
"""An id as the API accepts it; anything else cannot name a resource."""


def agent_not_found(agent_id: str, namespace: str) -> ParleyError:
    """``404 AGENT_NOT_FOUND``."""
    return not_found(ErrorCode.AGENT_NOT_FOUND, "agent", "agent_id", agent_id, namespace)


def require_agent(agents: AgentsProjection, namespace: str, agent_id: str) -> AgentView:
    """The live agent ``agent_id``, or ``404 AGENT_NOT_FOUND``."""
    view = agents.get(namespace, agent_id) if ID.match(agent_id) else None
    if view is None:
        raise agent_not_found(agent_id, namespace)
    return view


def require_session(
    runtime: RuntimeProjection, namespace: str, session_id: str, *, agent_id: str | None = None
) -> SessionDetail:
    """The live session ``session_id`` (of ``agent_id`` when given) with its history, or
    ``404 SESSION_NOT_FOUND``."""
    require_session_brief(runtime, namespace, session_id, agent_id=agent_id)
    view = runtime.session(namespace, session_id)
    assert view is not None  # just checked, and nothing ran in between
    return view


def require_session_brief(
    runtime: RuntimeProjection, namespace: str, session_id: str, *, agent_id: str | None = None
) -> SessionView:
    """The live session ``session_id`` (of ``agent_id`` when given) without its history, or
    ``404 SESSION_NOT_FOUND``."""
    view = runtime.session_brief(namespace, session_id) if ID.match(session_id) else None
    if view is not None and agent_id is not None and view.agent_id != agent_id:
        view = None  # another agent's conversation does not exist for this one
    if view is None:
        code = ErrorCode.SESSION_NOT_FOUND
        raise not_found(code, "session", "session_id", session_id, namespace)
    return view


def require_execution(
    runtime: RuntimeProjection, namespace: str, agent_id: str, execution_id: str
) -> ExecutionView:
    """The execution ``execution_id`` of ``agent_id``, or ``404 EXECUTION_NOT_FOUND``."""
    view = runtime.execution(namespace, agent_id, execution_id) if ID.match(execution_id) else None
    if view is None:
        raise ApiError(
            ErrorCode.EXECUTION_NOT_FOUND,
            f"agent {agent_id[:64]} has no execution {execution_id[:64]}",
            {"execution_id": execution_id[:64]},
        )
    return view


class AgentScope(Scope):
    """What the routes under `/agents/{agent_id}` share: the agent, its sessions and executions.

    A typed dependency (one per request); lookups happen when a handler asks, so a handler
    decides the order of its checks.
    """

    id_param = "agent_id"

    @property
    def agents(self) -> AgentsProjection:
        """The agents projection."""
        return self.edge.agents

    @property
    def runtime(self) -> RuntimeProjection:
        """The runtime projection (sessions and executions)."""
        return self.edge.runtime

    def live(self) -> AgentView:
        """The live agent, or ``404 AGENT_NOT_FOUND``."""
        return require_agent(self.agents, self.ns, self.id)

    def present(self) -> None:
        """Check the agent is live (``404 AGENT_NOT_FOUND``)."""
        self.live()

    def session(self, session_id: str) -> SessionView:
        """The agent's session ``session_id`` (without its history), or ``404
        SESSION_NOT_FOUND``."""
        return require_session_brief(self.runtime, self.ns, session_id, agent_id=self.id)

    def execution(self, execution_id: str) -> ExecutionView:
        """The agent's execution ``execution_id``, or ``404 EXECUTION_NOT_FOUND``."""
        return require_execution(self.runtime, self.ns, self.id, execution_id)


class SessionScope(Scope):
    """What the routes under `/sessions/{session_id}` share: the session and its writes."""

    id_param = "session_id"

    @property
    def runtime(self) -> RuntimeProjection:
        """The runtime projection (sessions)."""
        return self.edge.runtime

    def live(self) -> SessionDetail:
        """The live session with its history, or ``404 SESSION_NOT_FOUND``."""
        return require_session(self.runtime, self.ns, self.id)

    def present(self) -> None:
        """Check the session is live (``404 SESSION_NOT_FOUND``), without building its
        history."""
        require_session_brief(self.runtime, self.ns, self.id)


AGENT_SCOPE = {"agent": Provide(AgentScope, sync_to_thread=False)}
"""The dependencies of a router under `/agents/{agent_id}`: ``agent: AgentScope``."""
SESSION_SCOPE = {"session": Provide(SessionScope, sync_to_thread=False)}
"""The dependencies of a router under `/sessions/{session_id}`: ``session: SessionScope``."""
