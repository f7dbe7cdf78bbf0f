"""Agents answer their messages: the inbox work queue becomes turns and reply messages.

Every runtime pulls agents' deliveries from the work queue ``PARLEY_INBOX``
(``parley.inbox.agent.<agent id>``; durable consumer ``runtime-inbox``). For each it works
out the answer, sends the reply through the messaging service, and only then acknowledges
the item, so a delivery survives a killed runtime (a redelivered item finds its reply
already recorded: the reply's message id is derived from the inbound one, and the messaging
service de-duplicates by message id). An answer ready within half a second (a bid by the
agent's policy, a refusal from an agent that is not running, most turns on a fast model) is
sent with the delivery as its ``message.sent``'s ``receipt``: one append, not two. A longer
turn appends ``message.delivered`` once that time has passed, while it runs; a message that
gets no answer (an `inform`, a `cancel`) and a refused reply have theirs appended alone.

How an agent answers (its provider, tools and strategy do the work; the offline provider's
rule makes the answer `echo: <message>`):

- `request`, `query-if`, `query-ref`, `request-when`, `request-whenever`, `subscribe`: a
  turn of the agent in the conversation's session → `inform` `{"result": <answer>}`, or
  `failure` `{"reason"}`;
- `cfp`: the agent's bidding policy (no model call) → `propose` (estimated time, cost,
  confidence) or `refuse` `{"reason"}`;
- `accept-proposal`: a turn working the tendered task (the cfp's content) → `inform`
  `{"result"}` or `failure`;
- `cancel`: cancels the conversation's running turn; no answer;
- anything else (`inform`, `agree`, `refuse`, …): recorded as delivered; no answer;
- empty content, or `language: json` content that is not JSON: `not-understood` `{"reason"}`.

The message's content reaches the model as the user message, with the ACL envelope as
context *data*; it cannot change the agent's tools, who it may message, or its budget (those
come from its definition). A turn's own messages carry the inbound hop count plus one.
"""

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from opentelemetry import trace

from parley.contracts import subjects
from parley.contracts.acl import TAIL_HEADER
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageDelivered
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import Performative
from parley.contracts.acl import SendMessage
from parley.contracts.acl import conversation_stream
from parley.contracts.acl import read_tail
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.registry import AgentState
from parley.contracts.runtime import CancelTurn
from parley.contracts.runtime import Chat
from parley.eventstore import ANY_VERSION
from parley.eventstore import EventStoreError
from parley.kit.workqueue import WorkQueue
from parley.runtime.adapters.messenger import send_message_command
from parley.runtime.answers import JUDGE_PROMPT
from parley.runtime.answers import TURN_PERFORMATIVES
from parley.runtime.answers import Answer
from parley.runtime.answers import content_text
from parley.runtime.answers import derived_id
from parley.runtime.answers import parse_verdict
from parley.runtime.bidding import bid
from parley.runtime.deps import Deps
from parley.runtime.recording import SOURCE
from parley.runtime.turns import Turns
from parley.runtime.workers.queued import QueueWorker

__all__ = ["Inbox"]

log = logging.getLogger(__name__)

DURABLE = "runtime-inbox"
_REPLY_TIMEOUT_S = 10.0
_REPLY_RETRIES_S = (0.25, 0.5, 1.0, 2.0, 4.0)
_TRY_AGAIN = frozenset({ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.TIMEOUT})
_RECEIPT_WAIT_S = 0.5
"""How long an answer may take before the message's delivery is recorded on its own."""
_DEDUPE_WINDOW_S = 100.0
"""A bit under JetStream's 2-minute window: older items may be re-publications."""
_decode = msgspec.json.Decoder(AclMessage).decode
_P = Performative


def _expects_answer(performative: Performative) -> bool:
    return performative in TURN_PERFORMATIVES or performative in (_P.CFP, _P.ACCEPT_PROPOSAL)


class Inbox(QueueWorker):
    """Takes agents' deliveries and answers them."""

    def __init__(self, deps: Deps, turns: Turns) -> None:
        super().__init__(deps)
        self.turns = turns

    async def start(self) -> None:
        """Create the inbox stream if needed and start pulling."""
        deps = self.deps
        queue = WorkQueue(
            deps.js,
            stream=subjects.INBOX_STREAM,
            durable=DURABLE,
            filter_subject=subjects.INBOX_AGENTS,
            handle=self._handle,
            ack_wait=deps.settings.ack_wait,
            concurrency=max(1, deps.settings.max_in_flight),
        )
        await self._pull(queue, [subjects.INBOX_ALL])

    async def _handle(self, msg: Msg) -> None:
        try:
            message = _decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.error("dropping an unreadable inbox item on %s", msg.subject)
            await msg.term()
            return
        agent_id = msg.subject.rsplit(".", 1)[-1]
        span = trace.get_current_span()  # the work queue's consumer span: name what it is
        span.update_name(f"process {message.performative}")
        span.set_attributes(
            {
                "messaging.message.id": message.message_id,
                "messaging.message.conversation_id": message.conversation_id,
                "fipa.performative": message.performative,
            }
        )
        if self._maybe_seen(msg, message) and await self._answered(message, agent_id):
            await msg.ack()  # a redelivery of work already done: no second turn
            return
        keep = asyncio.create_task(self._keep(msg))
        tail = (msg.headers or {}).get(TAIL_HEADER)
        try:
            answer, receipt = self._at_once(message, agent_id), True
            if answer is None:
                answer, receipt = await self._work_out(message, agent_id, tail)
            if answer is not None:
                reply = await self._reply_soon(message, agent_id, answer, receipt)
                if reply is None:
                    await msg.nak(delay=1.0)  # messaging unreachable: try again shortly
                    return
                if receipt and not reply.ok:  # refused: it carries no receipt
                    await self._delivered(message, agent_id, None)
        finally:
            keep.cancel()
        await msg.ack()

    @staticmethod
    def _maybe_seen(msg: Msg, message: AclMessage) -> bool:
        """Whether this item may have been worked before: redelivered, or re-published after
        JetStream's de-duplication window (the messaging service's restart sweep)."""
        if msg.metadata.num_delivered > 1:
            return True
        sent = message.sent_at
        return sent is not None and (utcnow() - sent).total_seconds() > _DEDUPE_WINDOW_S

    async def _answered(self, message: AclMessage, agent_id: str) -> bool:
        """Whether the agent's reply to ``message`` is already recorded."""
        reply_id = derived_id(message.message_id, agent_id, "reply")
        stream = conversation_stream(message.namespace, message.conversation_id)
        events = await self.deps.store.read(stream)
        return any(
            e.type == "message.sent" and e.data["message"]["message_id"] == reply_id for e in events
        )

    async def _keep(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.deps.settings.ack_wait / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _delivered(self, message: AclMessage, agent_id: str, tail: str | None) -> None:
        """Record that ``agent_id`` took ``message``, at the conversation's end (``tail``:
        where the message's record left it, so the end need not be looked up)."""
        delivered = MessageDelivered(
            message_id=message.message_id, receiver=agent_id, worker=self.deps.settings.worker
        )
        event = NewEvent(
            id=derived_id(message.message_id, agent_id, "delivered"),
            type="message.delivered",
            subject=message.conversation_id,
            data=msgspec.to_builtins(delivered),
            namespace=message.namespace,
            source=SOURCE,
            correlationid=message.message_id,
        )
        stream = conversation_stream(message.namespace, message.conversation_id)
        if tail is not None and (known := read_tail(tail)) is not None:
            self.deps.store.know_tail(stream, *known)
        await self.deps.store.append(stream, [event], ANY_VERSION)

    def _at_once(self, message: AclMessage, agent_id: str) -> Answer | None:
        """The answer when no turn works it out (a refusal from an agent that is not
        running, a bid by a policy other than `llm`), else None. Such an answer is sent as
        soon as the message is taken, and its record is the message's receipt too."""
        agent = self.deps.directory.get(agent_id)
        performative = message.performative
        if not _expects_answer(performative):
            return None
        if agent is None or agent.state is not AgentState.RUNNING:
            state = "unknown" if agent is None else agent.state.value
            reason = f"agent {agent_id} is {state}"
            return (_P.REFUSE if performative is _P.CFP else _P.FAILURE), {"reason": reason}
        if performative is _P.CFP:
            answer, judged = self._policy_bid(message, agent_id)
            return None if judged else answer
        return None

    async def _work_out(
        self, message: AclMessage, agent_id: str, tail: str | None
    ) -> tuple[Answer | None, bool]:
        """The answer a turn (or the agent's model) works out, and whether its reply is to
        carry the message's receipt.

        An answer ready within :data:`_RECEIPT_WAIT_S` is sent with the receipt: nothing is
        recorded before it (one append, not two). A longer turn's delivery is recorded once
        that time has passed, while the turn goes on, so it shows meanwhile. A message that
        gets no answer (an `inform`, a `cancel`) has its delivery recorded first, alone.
        """
        if not _expects_answer(message.performative):
            await self._delivered(message, agent_id, tail)
            return await self._answer(message, agent_id), False
        work = asyncio.ensure_future(self._answer(message, agent_id))
        try:
            done, _ = await asyncio.wait({work}, timeout=_RECEIPT_WAIT_S)
        except BaseException:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise
        receipt = True
        if not done:
            try:
                await self._delivered(message, agent_id, tail)
                receipt = False
            except EventStoreError as exc:  # the turn goes on; its answer carries the receipt
                log.warning("delivery of %s not recorded yet: %r", message.message_id, exc)
        if (answer := await work) is None:  # no answer after all: no reply to carry it
            if receipt:
                await self._delivered(message, agent_id, tail)
            return None, False
        return answer, receipt

    async def _answer(self, message: AclMessage, agent_id: str) -> Answer | None:
        """The answer a turn of the agent works out."""
        agent = self.deps.directory.get(agent_id)
        performative = message.performative
        if agent is None or agent.state is not AgentState.RUNNING:
            return self._at_once(message, agent_id)  # it stopped meanwhile
        if performative is _P.CANCEL:
            await self._cancel(message, agent_id)
            return None
        if not _expects_answer(performative):
            return None
        if performative is _P.CFP:
            return await self._bid(message, agent_id)
        text = content_text(message)
        if performative is _P.ACCEPT_PROPOSAL:
            text = await self._tendered(message) or text
        if text is None:
            reason = "the content is empty or not valid for its language"
            return _P.NOT_UNDERSTOOD, {"reason": reason}
        return await self._turn(message, agent_id, text)

    def _policy_bid(self, message: AclMessage, agent_id: str) -> tuple[Answer, bool]:
        """The agent's policy's bid (or refusal) for the cfp, and whether its model must
        judge that bid (policy `llm`)."""
        found = self.deps.directory.get(agent_id)
        assert found is not None
        # keyed like the task's turns (its conversation's session): the bid, the llm's
        # verdict on it and the awarded work all run on one version of the agent
        session_id = derived_id(message.conversation_id, agent_id)
        agent = self.deps.directory.route(found, session_id).agent
        content = message.content if isinstance(message.content, dict) else {}
        offer = bid(
            agent.spec, content, self.deps.stats.get(agent_id), self.deps.capacity.load(agent_id)
        )
        if isinstance(offer, str):
            return (_P.REFUSE, {"reason": offer}), False
        return (_P.PROPOSE, msgspec.to_builtins(offer)), agent.spec.bidding.policy == "llm"

    async def _bid(self, message: AclMessage, agent_id: str) -> Answer:
        """The policy's bid, judged by the agent's model when its policy is `llm`."""
        (performative, offer), judged = self._policy_bid(message, agent_id)
        if not judged:
            return performative, offer
        content = message.content if isinstance(message.content, dict) else {}
        verdict = await self._judge(message, agent_id, content)
        if verdict is not None and verdict.get("bid") is False:
            return _P.REFUSE, {"reason": str(verdict.get("reason") or "the agent declined")}
        confidence = verdict.get("confidence") if verdict is not None else None
        if isinstance(confidence, int | float) and 0 <= confidence <= 1:
            offer = {**offer, "confidence": float(confidence)}
        return performative, offer

    async def _judge(
        self, message: AclMessage, agent_id: str, tender: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The agent's model decides whether to bid (policy `llm`); None when it gave no
        verdict, and the policy's bid stands."""
        prompt = JUDGE_PROMPT + msgspec.json.encode(tender).decode()
        chat = Chat(
            namespace=message.namespace,
            agent_id=agent_id,
            session_id=derived_id(message.conversation_id, agent_id),
            turn_id=new_id(),
            message=prompt,
            policy="enqueue",
            hops=message.hops,
            request_id=message.message_id,
        )
        try:
            reply = await self.turns.chat(chat, open_session=True)
        except ParleyError:
            return None
        if not reply.ok or reply.chat is None:
            return None
        return parse_verdict(reply.chat.response)

    async def _tendered(self, message: AclMessage) -> str | None:
        """The task an `accept-proposal` awards: the content of the conversation's cfp."""
        stream = conversation_stream(message.namespace, message.conversation_id)
        for event in reversed(await self.deps.store.read(stream)):
            if event.type == "message.sent" and event.data["message"]["performative"] == "cfp":
                cfp = msgspec.convert(event.data["message"], AclMessage)
                return content_text(cfp)
        return None

    async def _turn(self, message: AclMessage, agent_id: str, text: str) -> Answer:
        session_id = derived_id(message.conversation_id, agent_id)
        chat = Chat(
            namespace=message.namespace,
            agent_id=agent_id,
            session_id=session_id,
            turn_id=new_id(),
            message=text,
            context={
                "acl": {
                    "performative": message.performative.value,
                    "sender": message.sender,
                    "conversation_id": message.conversation_id,
                    "protocol": message.protocol,
                }
            },
            policy="enqueue",
            hops=message.hops,
            request_id=message.message_id,
        )
        try:
            reply = await self.turns.chat(chat, open_session=True)
        except ParleyError as fault:
            return _P.FAILURE, {"reason": fault.message}
        if not reply.ok or reply.chat is None:
            reason = reply.error.message if reply.error else "no answer"
            return _P.FAILURE, {"reason": reason}
        if reply.chat.outcome != "completed":
            return _P.FAILURE, {"reason": f"the turn was {reply.chat.outcome}"}
        usage = reply.chat.usage
        return _P.INFORM, {
            "result": reply.chat.response,
            "usage": {"tokens": usage.total_tokens, "cost_usd": usage.cost_usd},
        }

    async def _cancel(self, message: AclMessage, agent_id: str) -> None:
        session_id = derived_id(message.conversation_id, agent_id)
        with contextlib.suppress(ParleyError):
            await self.turns.cancel(CancelTurn(namespace=message.namespace, session_id=session_id))

    async def _reply_soon(
        self, message: AclMessage, agent_id: str, answer: Answer, receipt: bool
    ) -> MessageReply | None:
        """Send the answer, trying again for a few seconds while messaging cannot take it
        (e.g. NATS restarting): the answer is worked out once, not again by a redelivery.
        ``receipt``: the answer also records that this worker took ``message``. None when
        messaging could not take it."""
        for pause in _REPLY_RETRIES_S:
            if (reply := await self._reply(message, agent_id, answer, receipt)) is not None:
                return reply
            await asyncio.sleep(pause)
        return await self._reply(message, agent_id, answer, receipt)

    async def _reply(
        self, message: AclMessage, agent_id: str, answer: Answer, receipt: bool
    ) -> MessageReply | None:
        """Send the answer; None when the messaging service could not be reached."""
        performative, content = answer
        outgoing = OutgoingMessage(
            performative=performative,
            sender=agent_id,
            receivers=list(message.reply_to or [message.sender]),
            content=content,
            language="json",
            protocol=message.protocol,
            conversation_id=message.conversation_id,
            in_reply_to=message.reply_with or message.message_id,
            message_id=derived_id(message.message_id, agent_id, "reply"),
        )
        command = SendMessage(
            message=outgoing,
            namespace=message.namespace,
            hops=message.hops + 1,
            request_id=message.message_id,
            taken_by=self.deps.settings.worker if receipt else None,
        )
        try:
            reply = await send_message_command(self.deps.nc, command, _REPLY_TIMEOUT_S)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
            return None
        if not reply.ok and reply.error is not None and reply.error.code in _TRY_AGAIN:
            return None  # not recorded: the store or NATS did not answer messaging
        if not reply.ok and reply.error is not None:
            log.warning(
                "agent %s's %s to %s was refused: %s %s",
                agent_id,
                performative.value,
                message.message_id,
                reply.error.code,
                reply.error.message,
            )
        return reply
