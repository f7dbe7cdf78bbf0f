"""The lifecycle of an agent: `POST /agents/{id}/start|pause|resume|stop` and `/actions`.

Like every agent write, a registry command answered once this edge's projection shows it.
"""

from typing import Annotated
from typing import Any
from typing import cast

import msgspec
from litestar import Response
from litestar import Router
from litestar import post
from litestar.di import NamedDependency
from msgspec import Meta

from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import AgentView
from parley.edge.controllers.agents import PREFIX
from parley.edge.controllers.agents import checked_id
from parley.edge.controllers.agents import send_registry
from parley.edge.controllers.agents import view_after
from parley.edge.controllers.lookups import AGENT_SCOPE
from parley.edge.controllers.lookups import AgentScope
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import versioned
from parley.edge.http.errors import error_responses

__all__ = ["ActionBody", "ActionRequest", "agent_action_router"]

Reason = Annotated[str, Meta(max_length=1024, description="Why; recorded in the event.")]


class ActionBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional body of `POST /agents/{id}/start|pause|resume|stop`."""

    reason: Reason | None = None
    """Why; recorded in the event."""
    force: bool = False
    """Allow `stop` from `failed`."""


class ActionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /agents/{id}/actions`."""

    action: AgentAction
    """`start`, `pause`, `resume`, `stop` or `fail`."""
    reason: Reason | None = None
    """Why; recorded in the event."""
    force: bool = False
    """Allow `stop` from `failed`."""


def _action_route(path: str, action: AgentAction | None, **route: Any) -> Any:
    """The handler of ``POST /{agent_id}/<path>``: ``action``, or the body's (`/actions`)."""
    body_type: type[ActionBody | ActionRequest] = ActionRequest if action is None else ActionBody

    async def handler(
        agent: NamedDependency[AgentScope],
        expected_version: NamedDependency[int | None],
    ) -> Response[Data[AgentView]]:
        checked_id(agent.id, agent.ns)
        body: ActionBody | ActionRequest = await agent.body(body_type, optional=action is not None)
        command = AgentActionCommand(
            namespace=agent.ns,
            request_id=agent.request_id,
            agent_id=agent.id,
            action=body.action if isinstance(body, ActionRequest) else cast(AgentAction, action),
            reason=body.reason,
            force=body.force,
            expected_version=expected_version,
        )
        await send_registry(agent.writes, agent.agents, "agent_action", command)
        return versioned(view_after(agent.agents, agent.ns, agent.id))

    handler.__name__ = handler.__qualname__ = f"agent_{action.value if action else 'action'}"
    return post(
        f"/{{agent_id:str}}/{path}",
        status_code=200,
        opt={"body": body_type, "body_optional": action is not None},
        responses=error_responses(400, 404, 409, 415, 422, 503, 504),
        **route,
    )(handler)


def _lifecycle(action: AgentAction) -> Any:
    verb = action.value.capitalize()
    return _action_route(
        action.value,
        action,
        summary=f"{verb} an agent",
        description='Optional body `{"reason", "force"}`. Illegal transitions are'
        " `409 INVALID_STATE_TRANSITION`.",
        name=f"agent-{action.value}",
        operation_id=f"{action.value}Agent",
    )


agent_action = _action_route("actions", None, summary="Apply a lifecycle action")
"""`{"action": "start|pause|resume|stop|fail", "reason", "force"}`."""


agent_action_router = Router(
    path=PREFIX,
    route_handlers=[
        agent_action,
        *(
            _lifecycle(a)
            for a in (AgentAction.START, AgentAction.PAUSE, AgentAction.RESUME, AgentAction.STOP)
        ),
    ],
    dependencies=AGENT_SCOPE,
    tags=["agents"],
)
"""The lifecycle routes of agents."""
