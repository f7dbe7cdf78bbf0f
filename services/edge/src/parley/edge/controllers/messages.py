"""`/api/v1/messages`: send FIPA-ACL messages (or send and wait for the reply), and history.

`POST` is the messaging service's `send` command. Without `wait` it answers `202 Accepted`
once the message is recorded and queued (delivery itself is asynchronous); with `wait`
seconds it answers `200` with the first reply, or `timed_out: true` when none came (the
message stays recorded). Every answer waits until this edge's messages projection shows the
message, so a `GET` right after sees it. `Idempotency-Key` becomes the message id: a retry
records the message once and answers the recorded outcome (`Idempotent-Replayed: true`).
"""

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Response
from litestar import Router
from litestar import get
from litestar import post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.params import Parameter
from msgspec import Meta

from parley.contracts.acl import SERVICE as MESSAGING
from parley.contracts.acl import AclMessage
from parley.contracts.acl import Delivery
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import Principal
from parley.contracts.acl import SendMessage
from parley.contracts.errors import ErrorCode
from parley.edge.controllers.lookups import ID
from parley.edge.controllers.message_parties import with_parties
from parley.edge.controllers.resources import SCOPE
from parley.edge.controllers.resources import Scope
from parley.edge.http.auth import principal
from parley.edge.http.envelopes import Data
from parley.edge.http.envelopes import Page
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import error_responses
from parley.edge.http.errors import invalid_value
from parley.edge.http.errors import not_found
from parley.edge.http.guards import idempotent_id
from parley.edge.http.guards import replay_headers
from parley.edge.http.paging import Paging
from parley.edge.http.params import many_of
from parley.edge.http.params import optional_header
from parley.edge.projections.messages import MessagesProjection
from parley.edge.projections.messages import MessageView
from parley.edge.streams.filters import split_values

__all__ = ["message_router"]

PREFIX = "/api/v1/messages"
_IDEMPOTENCY_NS = uuid.UUID("2c7e9a14-3b5d-4f60-8e1a-9d4c2b7f0e35")
_PERFORMATIVES = {p.value for p in Performative}


class SendRequest(OutgoingMessage, kw_only=True, forbid_unknown_fields=True):
    """A message to send: the FIPA-ACL fields, plus `receiver` (one receiver, as Caxton
    spells it) and `wait` (send-and-wait)."""

    receiver: Principal | None = None
    """One receiver; joins `receivers`."""
    wait: Annotated[float, Meta(ge=0, le=300)] | None = None
    """Seconds to wait for the first reply (send-and-wait); absent: answer at once."""


class SentMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a send did."""

    message_id: str
    """The message's id (its `Idempotency-Key`-derived id, if one was sent)."""
    conversation_id: str
    """The conversation it belongs to."""
    status: str
    """`delivered` (queued for every receiving agent, task or run), `partially_delivered`,
    or `recorded` (only `user:` receivers: nothing to deliver)."""
    delivered_to: list[str] = []
    """Receivers it was queued for."""
    delivered_at: datetime | None = None
    """When it was queued."""
    deliveries: list[Delivery] = []
    """Each receiver's outcome, with the reason of a failure."""
    reply: AclMessage | None = None
    """Send-and-wait: the first reply."""
    timed_out: bool = False
    """Send-and-wait: no reply came within `wait` (or before the message's `reply_by`)."""


def _message_id(body: SendRequest, ns: str, idempotency_key: str | None) -> str | None:
    if idempotency_key is None:
        return body.message_id
    derived = idempotent_id(idempotency_key, ns, _IDEMPOTENCY_NS)
    if body.message_id is not None and body.message_id != derived:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "give Idempotency-Key or message_id, not both",
            [{"field": "body.message_id", "message": "conflicts with Idempotency-Key"}],
        )
    return derived


@post(
    "/",
    status_code=202,
    summary="Send a message (or send and wait for the reply)",
    description="Direct (`receivers`/`receiver`) or by `capability` (the least loaded running"
    " agent with it, or all of them with `broadcast`). `202` when recorded and queued; with"
    " `wait` seconds, `200` with the first `reply` or `timed_out`. Every receiver unreachable"
    " is `422 MESSAGE_DELIVERY_FAILED` (the message stays recorded); a reply breaking its"
    " protocol is `409 PROTOCOL_VIOLATION`, one after `reply_by` `409 MESSAGE_EXPIRED`.",
    opt={"body": SendRequest},
    responses={
        200: ResponseSpec(Data[SentMessage], description="With `wait`, or a replay."),
        **error_responses(400, 404, 409, 413, 415, 422, 503, 504),
    },
)
async def send_message(
    ctx: NamedDependency[Scope],
    idempotency_key: Annotated[
        str | None, optional_header("Idempotency-Key", "Retry-safe send.")
    ] = None,
) -> Response[Data[SentMessage]]:
    """Record and deliver one message."""
    body = await ctx.body(SendRequest)
    ns, messages, settings = ctx.ns, ctx.edge.messages, ctx.edge.settings
    message_id = _message_id(body, ns, idempotency_key)
    fields = {name: getattr(body, name) for name in OutgoingMessage.__struct_fields__}
    if body.receiver is not None and body.receiver not in body.receivers:
        fields["receivers"] = [*body.receivers, body.receiver]
    fields["message_id"] = message_id
    replayed = message_id is not None and messages.has(ns, message_id)
    caller = principal(ctx.request)
    command = SendMessage(
        message=with_parties(OutgoingMessage(**fields), ctx.edge.agents, ns, caller),
        namespace=ns,
        request_id=ctx.request_id,
        traceparent=ctx.request.headers.get("traceparent"),
        wait_seconds=body.wait,
        min_position=ctx.edge.positions.messaging,
    )
    within = settings.command_timeout + (body.wait or 0.0)
    try:
        reply = await ctx.writes.send(
            MESSAGING, "send", command, MessageReply, views=(messages,), within=within, strict=False
        )
    except ApiError as exc:  # a refused delivery is recorded: show it to a GET right after
        if isinstance(exc.details, dict) and (position := exc.details.get("position")):
            await messages.wait_for(position, settings.read_your_writes_timeout)
        raise
    sent = SentMessage(
        message_id=reply.message_id or "",
        conversation_id=reply.conversation_id or "",
        status=reply.status or "recorded",
        delivered_to=reply.delivered_to,
        delivered_at=reply.delivered_at,
        deliveries=reply.deliveries,
        reply=reply.reply,
        timed_out=reply.timed_out,
    )
    headers = replay_headers(f"{PREFIX}/{sent.message_id}", replayed)
    status = 200 if body.wait is not None or replayed else 202
    return Response(Data(data=sent), status_code=status, headers=headers)


@get(
    "/",
    summary="Message history",
    description="Recorded messages, oldest first. Filters combine with AND; repeated or"
    " comma-separated `agent_id` (sender or receiver) and `performative` values with OR.",
    responses=error_responses(400, 422),
)
async def list_messages(
    paging: NamedDependency[Paging],
    messages: NamedDependency[MessagesProjection],
    ns: NamedDependency[str],
    conversation_id: Annotated[
        str | None, Parameter(required=False, description="One conversation.")
    ] = None,
    agent_id: Annotated[
        list[str] | None,
        Parameter(required=False, description="Sent or received by this principal."),
    ] = None,
    performative: Annotated[
        list[str] | None, many_of(sorted(_PERFORMATIVES), "FIPA performative.")
    ] = None,
) -> Page[AclMessage]:
    """A page of the namespace's message history."""
    performatives = frozenset(split_values(performative or ()))
    if unknown := sorted(performatives - _PERFORMATIVES):
        message = "expected FIPA performatives, e.g. request, inform, cfp"
        raise invalid_value("performative", unknown[0], message)
    found = messages.history(
        ns,
        conversation_id=conversation_id,
        agent_ids=frozenset(split_values(agent_id or ())),
        performatives=performatives,
    )
    page = paging.page(found, lambda item: f"{item[0]:020d}")
    return Page(data=[message for _, message in page.data], pagination=page.pagination)


@get("/{message_id:str}", summary="Read a message", responses=error_responses(404))
async def get_message(
    messages: NamedDependency[MessagesProjection],
    ns: NamedDependency[str],
    message_id: FromPath[str],
) -> Data[MessageView]:
    """One message with each receiver's delivery (or why it was rejected)."""
    view = messages.get(ns, message_id) if ID.match(message_id) else None
    if view is None:
        raise not_found(ErrorCode.NOT_FOUND, "message", "message_id", message_id, ns)
    return Data(data=view)


message_router = Router(
    path=PREFIX,
    route_handlers=[send_message, list_messages, get_message],
    dependencies=SCOPE,
    tags=["messages"],
)
"""Every `/api/v1/messages` route."""
