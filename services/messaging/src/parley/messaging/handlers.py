"""The ``send`` command: validate → resolve receivers → check the protocol → record → deliver.

Recording: ``message.sent`` is appended to ``conversation-<id>`` at the conversation's
expected version (a lost race reads the stream's new tail and decides again). Its event id is
derived from the namespace, conversation and message id, so a retried send is stored once;
a send whose ``message_id`` the conversation already holds answers the recorded outcome
(re-publishing deliveries no runtime took yet).

Defaults: a new conversation takes its first message's id as its id (so a retry without a
conversation id lands in the same one); a reply without ``conversation_id`` joins the
conversation of the message it answers.

System notices: a receiving agent that cannot be reached, and a message refused for its hop
count, are answered to the *sending agent* with a ``failure`` from ``user:parley``
(:data:`SYSTEM`), recorded in the same conversation (content ``{"code", "reason",
"receiver"}``) and announced to its waiters, so an agent waiting for a reply learns at once.
"""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from parley.contracts.acl import (
    AclMessage,
    Delivery,
    MessageFailed,
    MessageRejected,
    MessageReply,
    MessageSent,
    OutgoingMessage,
    Performative,
    SendMessage,
    conversation_stream,
    reply_subject,
)
from parley.contracts.envelope import Event, NewEvent, utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.eventstore import ANY_VERSION, ConcurrencyConflict, EventStore
from parley.kit.telemetry import current_traceparent
from parley.messaging.conversation import Conversation, Refusal, check, evolve, is_agent
from parley.messaging.delivery import Outbox
from parley.messaging.directory import Directory
from parley.messaging.errors import MessagingError

__all__ = ["SYSTEM", "Messaging"]

log = logging.getLogger(__name__)

SYSTEM = "user:parley"
"""The principal the platform's own notices come from."""
_IDS = uuid.UUID("0b9c7f3e-8d21-4e5a-9a61-3c2f1d7e6b54")
_RETRIES = 32
"""Appends to a crowded conversation (agents' `message.delivered` interleave with the replies
recorded here) retry this often, with a short random pause, before giving up."""
_CATCH_UP_S = 1.0
_encode = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(AclMessage).decode
_STATE_HINT = {
    "created": "start it",
    "paused": "resume it",
    "stopped": "start it",
    "failed": "restart it",
}


def _event_id(namespace: str, conversation_id: str, *parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join((namespace, conversation_id, *parts))))


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # a time without a zone is read as UTC
    return moment


class Messaging:
    """Records and delivers messages; keeps folded conversations between sends."""

    def __init__(
        self,
        store: EventStore,
        directory: Directory,
        outbox: Outbox,
        nc: Client,
        cache_size: int = 50_000,
    ) -> None:
        self.store, self.directory, self.outbox, self.nc = store, directory, outbox, nc
        self._cache: dict[str, Conversation] = {}
        self._cache_size = cache_size
        self._locks: dict[str, list] = {}  # conversation id → [lock, users]

    # --- the command -------------------------------------------------------------------

    async def send(self, cmd: SendMessage) -> MessageReply:
        """Record ``cmd.message`` and deliver it; with ``wait_seconds``, wait for a reply."""
        out, ns = cmd.message, cmd.namespace
        if cmd.min_position:
            await self.directory.wait_for(cmd.min_position, 2.0)
        _validate(out)
        await self._check_sender(out.sender, ns)
        message_id = out.message_id or new_id()
        conversation_id = (
            out.conversation_id
            or self.directory.conversation_of_message(ns, message_id)
            or await self._replied_conversation(out, ns)
            or message_id
        )
        waiter = await self._listen(message_id, conversation_id) if cmd.wait_seconds else None
        try:
            fresh = out.message_id is None and conversation_id == message_id
            message, conversation, replayed = await self._record(
                cmd, message_id, conversation_id, fresh
            )
            reply = await self._deliver(cmd, message, conversation, replayed)
            if message.in_reply_to:
                original = conversation.original(message.in_reply_to)
                await self.outbox.announce(
                    message, original.message_id if original else None, _encode(message)
                )
            if waiter is not None:
                answer = conversation.first_reply.get(message_id)
                if answer is None:
                    answer = await _wait(waiter[1], _wait_seconds(cmd, message))
                reply = msgspec.structs.replace(reply, reply=answer, timed_out=answer is None)
            return reply
        finally:
            if waiter is not None:
                with contextlib.suppress(Exception):
                    await waiter[0].unsubscribe()

    # --- recording -----------------------------------------------------------------------

    async def _record(
        self, cmd: SendMessage, message_id: str, conversation_id: str, fresh: bool
    ) -> tuple[AclMessage, Conversation, bool]:
        """Append ``message.sent`` (or ``message.rejected``); the message, its conversation
        with it folded in, and whether the message was recorded by an earlier send.

        ``fresh``: the conversation is named after a message id minted here, so it cannot
        exist yet and is not read (the append at version 0 would catch it if it did)."""
        stream = conversation_stream(conversation_id)
        message: AclMessage | None = None
        async with self._serial(conversation_id):
            for attempt in range(_RETRIES):
                if fresh and attempt == 0:
                    conversation = self._remember(Conversation(id=conversation_id))
                else:
                    if attempt > 1:
                        await asyncio.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
                    conversation = await self._conversation(conversation_id, refresh=attempt > 0)
                if (recorded := conversation.messages.get(message_id)) is not None:
                    if attempt == 0:  # the cache may miss what happened since: read the tail
                        continue
                    return recorded, conversation, True
                if (refused := conversation.rejected.get(message_id)) is not None:
                    again = Refusal(code=ErrorCode(refused.code), reason=refused.reason)
                    raise _refusal_error(refused.message, again)
                if message is None:
                    message = self._message(cmd, message_id, conversation_id)
                refusal = check(conversation, message, message.sent_at or utcnow())
                if refusal is not None:
                    rejected = MessageRejected(
                        message=message, code=refusal.code.value, reason=refusal.reason
                    )
                    event = self._event(message, "message.rejected", rejected, "rejected")
                    try:
                        await self.store.append(stream, [event], conversation.version)
                    except ConcurrencyConflict:
                        continue
                    self._forget(conversation_id)
                    if refusal.code is ErrorCode.HOP_LIMIT_EXCEEDED:
                        await self._notify_sender(message, message.sender, refusal)
                    raise _refusal_error(message, refusal)
                original = conversation.original(message.in_reply_to or "")
                event = self._event(
                    message,
                    "message.sent",
                    MessageSent(message=message),
                    "sent",
                    causation=original.message_id if original else None,
                    correlation=cmd.request_id,
                    traceparent=cmd.traceparent,
                )
                try:
                    result = await self.store.append(stream, [event], conversation.version)
                except ConcurrencyConflict:
                    continue
                if result.version != conversation.version + 1:
                    self._forget(conversation_id)  # stored by an earlier try: read it back
                recorded_event = Event.record(
                    event, stream=stream, version=result.version, position=result.position
                )
                return message, evolve(conversation, recorded_event), False
        raise ConcurrencyConflict(stream, -1, -1)

    def _message(self, cmd: SendMessage, message_id: str, conversation_id: str) -> AclMessage:
        out = cmd.message
        return AclMessage(
            message_id=message_id,
            performative=out.performative,
            sender=out.sender,
            receivers=self._resolve(out, cmd.namespace),
            conversation_id=conversation_id,
            content=out.content,
            reply_to=out.reply_to,
            language=out.language,
            encoding=out.encoding,
            ontology=out.ontology,
            protocol=out.protocol,
            reply_with=out.reply_with,
            in_reply_to=out.in_reply_to,
            reply_by=_utc(out.reply_by),
            namespace=cmd.namespace,
            hops=cmd.hops,
            sent_at=utcnow(),
        )

    def _event(
        self,
        message: AclMessage,
        event_type: str,
        payload: msgspec.Struct,
        *id_parts: str,
        causation: str | None = None,
        correlation: str | None = None,
        traceparent: str | None = None,
    ) -> NewEvent:
        return NewEvent(
            type=event_type,
            subject=message.conversation_id,
            data=msgspec.to_builtins(payload),
            namespace=message.namespace,
            source="/parley/messaging",
            id=_event_id(message.namespace, message.conversation_id, message.message_id, *id_parts),
            correlationid=correlation,
            causationid=causation,
            traceparent=traceparent or current_traceparent(),
        )

    # --- receivers -----------------------------------------------------------------------

    def _resolve(self, out: OutgoingMessage, ns: str) -> list[str]:
        """Explicit receivers (de-duplicated), or the agents a capability routes to."""
        if out.receivers:
            return list(dict.fromkeys(out.receivers))
        assert out.capability is not None
        capable = [
            a for a in self.directory.with_capability(ns, out.capability) if a.id != out.sender
        ]
        running = [a for a in capable if self.directory.running(a)]
        if not running:
            others = ", ".join(f"{a.id} ({a.state.value})" for a in capable[:10])
            raise MessagingError(
                ErrorCode.MESSAGE_DELIVERY_FAILED,
                f"no running agent in namespace {ns} has capability {out.capability!r}"
                + (f"; agents with it that are not running: {others}" if others else ""),
                {
                    "capability": out.capability,
                    "agents": [{"agent_id": a.id, "state": a.state.value} for a in capable],
                },
            )
        if out.broadcast:
            return sorted(a.id for a in running)
        chosen = min(running, key=lambda a: (*self.directory.load(a.id), a.id))
        return [chosen.id]

    async def _check_sender(self, sender: str, ns: str) -> None:
        if not is_agent(sender) or self.directory.get(sender, ns) is not None:
            return
        await self._catch_up()
        if self.directory.get(sender, ns) is None:
            raise MessagingError(
                ErrorCode.AGENT_NOT_FOUND,
                f"the sender {sender} is no agent of namespace {ns}; send as an agent of the "
                "namespace or as a `user:<name>` principal",
                {"agent_id": sender},
            )

    async def _replied_conversation(self, out: OutgoingMessage, ns: str) -> str | None:
        if out.in_reply_to is None:
            return None
        found = self.directory.conversation_of(ns, out.in_reply_to)
        if found is None:
            await self._catch_up()
            found = self.directory.conversation_of(ns, out.in_reply_to)
        return found

    async def _catch_up(self) -> None:
        """Let the directory reach the store's newest event (bounded)."""
        with contextlib.suppress(Exception):
            await self.directory.wait_for(await self.store.last_position(), _CATCH_UP_S)

    # --- delivering ----------------------------------------------------------------------

    async def _deliver(
        self, cmd: SendMessage, message: AclMessage, conversation: Conversation, replayed: bool
    ) -> MessageReply:
        """Queue the message for each agent, task or run receiver; record the failures."""
        ns, message_id = cmd.namespace, message.message_id
        failed_before = conversation.failed.get(message_id, {}) if replayed else {}
        taken = conversation.delivered.get(message_id, set()) if replayed else set()
        outcomes: dict[str, Delivery] = {}
        failures: list[tuple[str, str]] = []
        to_queue: list[str] = []
        for receiver in message.receivers:
            if receiver.startswith("user:"):
                continue
            if (failure := failed_before.get(receiver)) is not None:
                outcomes[receiver] = _failed(receiver, failure.reason, failure.code)
                continue
            if receiver in taken:
                outcomes[receiver] = Delivery(receiver=receiver, status="queued")
                continue
            if is_agent(receiver) and not replayed:
                agent = self.directory.get(receiver, ns)
                if not self.directory.running(agent):
                    state = "unknown" if agent is None else agent.state.value
                    reason = (
                        f"agent {receiver} does not exist in namespace {ns}"
                        if agent is None
                        else f"agent {receiver} is {state}; {_STATE_HINT.get(state, 'start it')}"
                        " to deliver to it"
                    )
                    failures.append((receiver, reason))
                    outcomes[receiver] = _failed(receiver, reason)
                    continue
            to_queue.append(receiver)
        body = _encode(message)
        traceparent = cmd.traceparent or current_traceparent()
        queued = await asyncio.gather(
            *(self.outbox.enqueue(message, r, body, traceparent) for r in to_queue)
        )
        lost = [r for r, ok in zip(to_queue, queued, strict=True) if not ok]
        if lost:
            raise MessagingError(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"message {message_id} is recorded but could not be queued for "
                f"{', '.join(lost)}; retry with the same message_id",
                {"message_id": message_id, "conversation_id": message.conversation_id},
            )
        for receiver in to_queue:
            outcomes[receiver] = Delivery(receiver=receiver, status="queued")
        self.directory.queued(message, [r for r in to_queue if is_agent(r)])
        position = conversation.sent_at.get(message_id, 0)
        for receiver, reason in failures:
            position = max(position, await self._record_failure(message, receiver, reason))
        return _outcome(
            message, [outcomes[r] for r in message.receivers if r in outcomes], position
        )

    async def _record_failure(self, message: AclMessage, receiver: str, reason: str) -> int:
        failure = MessageFailed(
            message_id=message.message_id,
            receiver=receiver,
            code=ErrorCode.MESSAGE_DELIVERY_FAILED.value,
            reason=reason,
        )
        event = self._event(message, "message.failed", failure, "failed", receiver)
        result = await self.store.append(
            conversation_stream(message.conversation_id), [event], ANY_VERSION
        )
        refusal = Refusal(code=ErrorCode.MESSAGE_DELIVERY_FAILED, reason=reason)
        await self._notify_sender(message, receiver, refusal)
        return result.position

    async def _notify_sender(self, message: AclMessage, receiver: str, refusal: Refusal) -> None:
        """Tell an agent sender that ``message`` did not reach ``receiver`` (a system
        ``failure``, recorded, queued to the sender's inbox, announced to its waiters)."""
        sender = message.sender
        if not is_agent(sender):
            return
        notice = AclMessage(
            message_id=_event_id(
                message.namespace, message.conversation_id, message.message_id, "notice", receiver
            ),
            performative=Performative.FAILURE,
            sender=SYSTEM,
            receivers=[sender],
            conversation_id=message.conversation_id,
            content={"code": refusal.code.value, "reason": refusal.reason, "receiver": receiver},
            language="json",
            protocol=message.protocol,
            in_reply_to=message.reply_with or message.message_id,
            namespace=message.namespace,
            hops=message.hops + 1,
            sent_at=utcnow(),
        )
        event = self._event(
            notice,
            "message.sent",
            MessageSent(message=notice),
            "sent",
            causation=message.message_id,
        )
        try:
            await self.store.append(
                conversation_stream(message.conversation_id), [event], ANY_VERSION
            )
            body = _encode(notice)
            if self.directory.running(self.directory.get(sender, message.namespace)):
                await self.outbox.enqueue(notice, sender, body)
            await self.outbox.announce(notice, message.message_id, body)
        except Exception:  # a notice is a courtesy; the failure itself is recorded
            log.exception("could not notify %s about %s", sender, message.message_id)

    # --- waiting -------------------------------------------------------------------------

    async def _listen(
        self, message_id: str, conversation_id: str
    ) -> tuple[object, asyncio.Future[AclMessage]]:
        """Subscribe to replies of ``message_id`` before anything is delivered."""
        future: asyncio.Future[AclMessage] = asyncio.get_running_loop().create_future()

        async def on_reply(msg: Msg) -> None:
            if future.done():
                return
            try:
                reply = _decode_message(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return
            if reply.conversation_id == conversation_id:
                future.set_result(reply)

        sub = await self.nc.subscribe(reply_subject(message_id), cb=on_reply)
        return sub, future

    # --- conversation cache --------------------------------------------------------------

    async def _conversation(self, conversation_id: str, *, refresh: bool) -> Conversation:
        stream = conversation_stream(conversation_id)
        conversation = self._cache.pop(conversation_id, None)
        if conversation is None or refresh:
            after = conversation.version if conversation is not None else 0
            for event in await self.store.read(stream, after + 1):
                conversation = evolve(conversation, event)
        return self._remember(conversation or Conversation(id=conversation_id))

    def _remember(self, conversation: Conversation) -> Conversation:
        self._cache[conversation.id] = conversation
        if len(self._cache) > self._cache_size:
            del self._cache[next(iter(self._cache))]  # the least recently used
        return conversation

    def _forget(self, conversation_id: str) -> None:
        self._cache.pop(conversation_id, None)

    @contextlib.asynccontextmanager
    async def _serial(self, conversation_id: str) -> AsyncIterator[None]:
        """One send at a time per conversation in this process (others race by version)."""
        entry = self._locks.setdefault(conversation_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[conversation_id]


def _validate(out: OutgoingMessage) -> None:
    problems = []
    if not out.receivers and out.capability is None:
        problems.append(("receivers", "give receivers, or a capability to route by"))
    if out.receivers and out.capability is not None:
        problems.append(("capability", "give receivers or a capability, not both"))
    if out.broadcast and out.capability is None:
        problems.append(("broadcast", "broadcast needs a capability"))
    if problems:
        raise MessagingError(
            ErrorCode.VALIDATION_ERROR,
            "; ".join(m for _, m in problems),
            {"errors": [{"field": f"message.{f}", "message": m} for f, m in problems]},
        )


def _failed(receiver: str, reason: str, code: str | None = None) -> Delivery:
    return Delivery(
        receiver=receiver,
        status="failed",
        code=code or ErrorCode.MESSAGE_DELIVERY_FAILED.value,
        reason=reason,
    )


def _outcome(message: AclMessage, deliveries: list[Delivery], position: int) -> MessageReply:
    queued = [d.receiver for d in deliveries if d.status == "queued"]
    failed = [d for d in deliveries if d.status == "failed"]
    if not deliveries:
        status = "recorded"
    elif not failed:
        status = "delivered"
    elif queued:
        status = "partially_delivered"
    else:
        status = "failed"
    reply = MessageReply(
        ok=True,
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        status=status,
        delivered_to=queued,
        delivered_at=message.sent_at if queued else None,
        deliveries=deliveries,
        position=position,
    )
    if status == "failed":
        reasons = "; ".join(d.reason or d.receiver for d in failed)
        raise MessagingError(
            ErrorCode.MESSAGE_DELIVERY_FAILED,
            f"message {message.message_id} reached no receiver: {reasons}",
            {
                "message_id": message.message_id,
                "conversation_id": message.conversation_id,
                "status": status,
                "position": position,
                "deliveries": msgspec.to_builtins(deliveries),
            },
            reply,
        )
    return reply


def _refusal_error(message: AclMessage, refusal: Refusal) -> MessagingError:
    return MessagingError(
        refusal.code,
        refusal.reason,
        {"message_id": message.message_id, "conversation_id": message.conversation_id},
    )


def _wait_seconds(cmd: SendMessage, message: AclMessage) -> float:
    wait = cmd.wait_seconds or 0.0
    if message.reply_by is not None:
        wait = min(wait, (message.reply_by - utcnow()).total_seconds())
    return max(0.0, wait)


async def _wait(future: asyncio.Future[AclMessage], seconds: float) -> AclMessage | None:
    try:
        return await asyncio.wait_for(asyncio.shield(future), seconds)
    except TimeoutError:
        return future.result() if future.done() else None
