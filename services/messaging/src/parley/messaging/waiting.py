"""Send-and-wait: listen for the first reply to a message before it is delivered.

Replies are announced on core NATS (``subjects.reply_notice``, see
:class:`~parley.messaging.workers.delivery.Outbox`). The process holds one subscription to
every announcement (:class:`Replies`, made at start, before any message is queued) and hands
each to the waiters of its message id, so a fast answer cannot slip past a waiter, and a
waiting send costs no subscribe and unsubscribe of its own on the way.
"""

import asyncio
import contextlib

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parley.contracts import subjects
from parley.contracts.acl import AclMessage

__all__ = ["Replies", "Waiter"]

_decode_message = msgspec.json.Decoder(AclMessage).decode
_PREFIX = subjects.reply_notice("")


class Waiter:
    """The first reply to one message of one conversation, as it is announced."""

    def __init__(self, replies: "Replies", message_id: str, conversation_id: str) -> None:
        self.message_id, self.conversation_id = message_id, conversation_id
        self.reply: asyncio.Future[AclMessage] = asyncio.get_running_loop().create_future()
        self._replies = replies

    def offer(self, reply: AclMessage) -> None:
        """Take ``reply`` if it is the first one, in this waiter's conversation."""
        if not self.reply.done() and reply.conversation_id == self.conversation_id:
            self.reply.set_result(reply)

    async def wait(self, seconds: float) -> AclMessage | None:
        """The reply, waiting at most ``seconds`` for it (None if none came)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.reply), seconds)
        except TimeoutError:
            return self.reply.result() if self.reply.done() else None

    def close(self) -> None:
        """Stop listening."""
        self._replies.forget(self)


class Replies:
    """Every reply announced, handed to this process's waiters by message id."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[Waiter]] = {}
        self._sub: Subscription | None = None

    async def start(self, nc: Client) -> None:
        """Subscribe to every announcement (the server has the interest when this returns)."""
        self._sub = await nc.subscribe(subjects.reply_notice("*"), cb=self._on_reply)
        await nc.flush()

    async def stop(self) -> None:
        """Stop listening; waiters still waiting time out."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def listen(self, message_id: str, conversation_id: str) -> Waiter:
        """A waiter for the first reply to ``message_id`` in ``conversation_id``."""
        waiter = Waiter(self, message_id, conversation_id)
        self._waiting.setdefault(message_id, set()).add(waiter)
        return waiter

    def forget(self, waiter: Waiter) -> None:
        """Drop ``waiter``."""
        waiters = self._waiting.get(waiter.message_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiting[waiter.message_id]

    async def _on_reply(self, msg: Msg) -> None:
        waiters = self._waiting.get(msg.subject.removeprefix(_PREFIX))
        if not waiters:
            return  # nobody here waits for it (another process's send, or none)
        try:
            reply = _decode_message(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        for waiter in list(waiters):
            waiter.offer(reply)
