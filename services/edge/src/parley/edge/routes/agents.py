"""`/api/v1/agents`: create, list, read, patch, delete, and drive the lifecycle.

Writes are commands to the registry over NATS; after a successful command the response waits
(bounded by ``read_your_writes_timeout``) until this edge's projection has applied the
command's position, then answers from the projection, so a `GET` after a write never reads
stale data. `DELETE` answers `200` with `{"data": {"id", "deleted": true, "version"}}`.
"""

import re
import uuid
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from parley.contracts.errors import ErrorCode
from parley.contracts.registry import (
    AgentAction,
    AgentActionCommand,
    AgentPatch,
    AgentSpec,
    AgentState,
    AgentView,
    CommandReply,
    CreateAgent,
    DeleteAgent,
    RegistryCommand,
    UpdateAgent,
)
from parley.edge.body import decode_body
from parley.edge.errors import ApiError, ErrorEnvelope
from parley.edge.listing import AgentFilter, paginate, parse_labels
from parley.edge.request_ids import request_id
from parley.edge.schemas import (
    ActionBody,
    ActionRequest,
    AgentList,
    AgentResponse,
    DeletedAgent,
    DeletedResponse,
    Pagination,
)

__all__ = ["agent_router"]

PREFIX = "/api/v1/agents"
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IDEMPOTENCY_NS = uuid.UUID("6f1c1d2e-7a0b-5c3d-9e4f-5061a2b3c4d5")


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(ErrorEnvelope, description="Error envelope", generate_examples=False)
        for code in codes
    }


# --- dependencies ----------------------------------------------------------------------------


async def provide_namespace(
    x_parley_namespace: Annotated[
        str | None,
        Parameter(
            header="X-Parley-Namespace", required=False, description="Tenant; default `default`."
        ),
    ] = None,
    namespace_query: Annotated[
        str | None,
        Parameter(
            query="namespace", required=False, description="Tenant, if the header is absent."
        ),
    ] = None,
) -> str:
    """The request's namespace: header, then query, then `default`."""
    namespace = x_parley_namespace or namespace_query or "default"
    if not _NAMESPACE.match(namespace):
        message = "lowercase letters, digits and `-`, 1–63 characters"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid namespace {namespace[:80]!r}: {message}",
            [{"field": "header.X-Parley-Namespace", "message": message}],
        )
    return namespace


async def provide_expected_version(
    if_match: Annotated[
        str | None,
        Parameter(
            header="If-Match", required=False, description='Expected version: `"<version>"`.'
        ),
    ] = None,
) -> int | None:
    """The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `*` or none means any."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _VERSION.match(if_match.strip())
    if not match:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            'If-Match must be the ETag of the agent, e.g. "3"',
            [{"field": "header.If-Match", "message": "expected a quoted version number"}],
        )
    return int(match.group(1))


# --- helpers ---------------------------------------------------------------------------------


def _checked_id(agent_id: str, namespace: str) -> str:
    if not _AGENT_ID.match(agent_id):
        raise _not_found(agent_id, namespace)
    return agent_id


def _not_found(agent_id: str, namespace: str) -> ApiError:
    return ApiError(
        ErrorCode.AGENT_NOT_FOUND,
        f"no agent {agent_id[:64]} in namespace {namespace}",
        {"agent_id": agent_id[:64]},
    )


def _agent_response(view: AgentView, status: int = 200, **headers: str) -> Response[AgentResponse]:
    return Response(
        AgentResponse(data=view),
        status_code=status,
        headers={"ETag": f'"{view.version}"', **headers},
    )


async def _run(
    request: Request[Any, Any, Any], state: State, verb: str, command: RegistryCommand
) -> CommandReply:
    """Send ``command``, then wait until this edge's projection shows its effect."""
    reply: CommandReply = await state.commands.send(
        verb,
        command,
        request_id=request_id(request.scope),
        traceparent=request.headers.get("traceparent"),
    )
    if not await state.projection.wait_for(reply.position, state.settings.read_your_writes_timeout):
        raise ApiError(
            ErrorCode.TIMEOUT,
            f"the change was recorded (version {reply.version}) but is not visible yet; read"
            " the agent again shortly",
            {"agent_id": reply.agent_id, "version": reply.version, "position": reply.position},
        )
    return reply


def _view_after(state: State, namespace: str, agent_id: str) -> AgentView:
    view = state.projection.get(namespace, agent_id)
    if view is None:  # deleted by someone else between the command and now
        raise _not_found(agent_id, namespace)
    return view


# --- handlers --------------------------------------------------------------------------------


@post(
    "/",
    status_code=201,
    summary="Create an agent",
    description="JSON `AgentSpec` or, with `Content-Type: application/toml`, the same as TOML."
    " With `Idempotency-Key`, a retry returns the same agent (200) instead of a conflict.",
    opt={"body": AgentSpec},
    responses=_errors(400, 409, 413, 415, 422, 503, 504),
)
async def create_agent(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    idempotency_key: Annotated[
        str | None,
        Parameter(header="Idempotency-Key", required=False, description="Retry-safe create."),
    ] = None,
) -> Response[AgentResponse]:
    """Register an agent; it starts in state `created`."""
    spec = await decode_body(request, AgentSpec)
    agent_id = None
    if idempotency_key is not None:
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise ApiError(
                ErrorCode.INVALID_REQUEST,
                "Idempotency-Key must be 1–255 printable ASCII characters",
                [{"field": "header.Idempotency-Key", "message": "invalid"}],
            )
        agent_id = str(uuid.uuid5(_IDEMPOTENCY_NS, f"{ns}\x00{idempotency_key}"))
    existed = agent_id is not None and state.projection.get(ns, agent_id) is not None
    command = CreateAgent(
        namespace=ns, request_id=request_id(request.scope), spec=spec, agent_id=agent_id
    )
    reply = await _run(request, state, "create_agent", command)
    view = _view_after(state, ns, reply.agent_id or "")
    replayed = existed or reply.version > 1
    headers = {"Location": f"{PREFIX}/{view.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _agent_response(view, 200 if replayed else 201, **headers)


@get(
    "/",
    summary="List agents",
    description="Filters combine with AND; repeated `state`/`capability` values with OR;"
    " every `label=key=value` must match. `sort=name|created_at|updated_at|state:asc|desc`.",
    responses=_errors(400, 422),
)
async def list_agents(
    state: State,
    ns: str,
    agent_state: Annotated[
        list[str] | None,
        Parameter(
            query="state",
            required=False,
            description="Lifecycle state: " + ", ".join(s.value for s in AgentState) + ".",
        ),
    ] = None,
    capability: Annotated[list[str] | None, Parameter(required=False)] = None,
    label: Annotated[
        list[str] | None, Parameter(required=False, description="`key=value`, repeatable.")
    ] = None,
    trigger: Annotated[
        str | None, Parameter(required=False, description="`manual`, `webhook` or `periodic`.")
    ] = None,
    name: Annotated[str | None, Parameter(required=False, description="Exact name.")] = None,
    sort: Annotated[str, Parameter(description="`field:asc|desc`.")] = "created_at:asc",
    limit: Annotated[int, Parameter(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Parameter(required=False, description="`next_cursor`.")] = None,
) -> AgentList:
    """A page of the namespace's agents."""
    if trigger is not None and trigger not in ("manual", "webhook", "periodic"):
        message = "expected manual, webhook or periodic"
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid trigger {trigger[:40]!r}: {message}",
            [{"field": "query.trigger", "message": message}],
        )
    states = set()
    for value in agent_state or ():
        try:
            states.add(AgentState(value))
        except ValueError:
            message = "expected one of " + ", ".join(s.value for s in AgentState)
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                f"invalid state {value[:40]!r}: {message}",
                [{"field": "query.state", "message": message}],
            ) from None
    wanted = AgentFilter(
        states=frozenset(states),
        capabilities=frozenset(capability or ()),
        labels=parse_labels(label or ()),
        trigger=trigger,
        name=name,
    )
    page = paginate(state.projection.find(ns, wanted), sort=sort, limit=limit, cursor=cursor)
    return AgentList(
        data=page.items,
        pagination=Pagination(
            limit=limit,
            next_cursor=page.next_cursor,
            has_more=page.next_cursor is not None,
            total_count=page.total_count,
        ),
    )


@get("/{agent_id:str}", summary="Read an agent", responses=_errors(404))
async def get_agent(state: State, ns: str, agent_id: str) -> Response[AgentResponse]:
    """One agent, with its version as the `ETag`."""
    view = state.projection.get(ns, _checked_id(agent_id, ns))
    if view is None:
        raise _not_found(agent_id, ns)
    return _agent_response(view)


@patch(
    "/{agent_id:str}",
    summary="Update an agent",
    description="Fields present replace the definition's; labels merge (null removes a key).",
    opt={"body": AgentPatch},
    responses=_errors(400, 404, 409, 413, 415, 422, 503, 504),
)
async def update_agent(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    agent_id: str,
    expected_version: int | None,
) -> Response[AgentResponse]:
    """Change an agent's definition (a new version)."""
    _checked_id(agent_id, ns)
    change = await decode_body(request, AgentPatch)
    command = UpdateAgent(
        namespace=ns,
        request_id=request_id(request.scope),
        agent_id=agent_id,
        patch=change,
        expected_version=expected_version,
    )
    await _run(request, state, "update_agent", command)
    return _agent_response(_view_after(state, ns, agent_id))


@delete(
    "/{agent_id:str}",
    status_code=200,
    summary="Delete an agent",
    description="Tombstones the agent: its events stay, it leaves every view, its name is"
    " freed. Answers 200 with the deletion's version.",
    responses=_errors(400, 404, 409, 503, 504),
)
async def delete_agent(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    agent_id: str,
    expected_version: int | None,
) -> DeletedResponse:
    """Delete an agent."""
    _checked_id(agent_id, ns)
    command = DeleteAgent(
        namespace=ns,
        request_id=request_id(request.scope),
        agent_id=agent_id,
        expected_version=expected_version,
    )
    reply = await _run(request, state, "delete_agent", command)
    return DeletedResponse(data=DeletedAgent(id=agent_id, deleted=True, version=reply.version))


async def _act(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    agent_id: str,
    expected_version: int | None,
    action: AgentAction,
    reason: str | None,
    force: bool,
) -> Response[AgentResponse]:
    command = AgentActionCommand(
        namespace=ns,
        request_id=request_id(request.scope),
        agent_id=agent_id,
        action=action,
        reason=reason,
        force=force,
        expected_version=expected_version,
    )
    await _run(request, state, "agent_action", command)
    return _agent_response(_view_after(state, ns, agent_id))


def _lifecycle(action: AgentAction) -> Any:
    @post(
        f"/{{agent_id:str}}/{action.value}",
        status_code=200,
        summary=f"{action.value.capitalize()} an agent",
        description='Optional body `{"reason", "force"}`. Illegal transitions are'
        " `409 INVALID_STATE_TRANSITION`.",
        opt={"body": ActionBody},
        name=f"agent-{action.value}",
        operation_id=f"{action.value}Agent",
        responses=_errors(400, 404, 409, 415, 422, 503, 504),
    )
    async def handler(
        request: Request[Any, Any, Any],
        state: State,
        ns: str,
        agent_id: str,
        expected_version: int | None,
    ) -> Response[AgentResponse]:
        _checked_id(agent_id, ns)
        body = await decode_body(request, ActionBody, optional=True)
        return await _act(
            request, state, ns, agent_id, expected_version, action, body.reason, body.force
        )

    handler.__doc__ = f"{action.value.capitalize()} the agent."
    return handler


@post(
    "/{agent_id:str}/actions",
    status_code=200,
    summary="Apply a lifecycle action",
    opt={"body": ActionRequest},
    responses=_errors(400, 404, 409, 415, 422, 503, 504),
)
async def agent_action(
    request: Request[Any, Any, Any],
    state: State,
    ns: str,
    agent_id: str,
    expected_version: int | None,
) -> Response[AgentResponse]:
    """`{"action": "start|pause|resume|stop|fail", "reason", "force"}`."""
    _checked_id(agent_id, ns)
    body = await decode_body(request, ActionRequest)
    return await _act(
        request, state, ns, agent_id, expected_version, body.action, body.reason, body.force
    )


agent_router = Router(
    path=PREFIX,
    route_handlers=[
        create_agent,
        list_agents,
        get_agent,
        update_agent,
        delete_agent,
        agent_action,
        *(
            _lifecycle(a)
            for a in (AgentAction.START, AgentAction.PAUSE, AgentAction.RESUME, AgentAction.STOP)
        ),
    ],
    dependencies={
        "ns": Provide(provide_namespace),
        "expected_version": Provide(provide_expected_version),
    },
    tags=["agents"],
)
"""Every `/api/v1/agents` route."""
