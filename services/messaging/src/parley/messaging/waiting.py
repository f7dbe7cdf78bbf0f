"""Send-and-wait: listen for the first reply to a message before it is delivered.

Replies are announced on core NATS (``subjects.reply_notice``, see
:class:`~parley.messaging.workers.delivery.Outbox`); a waiter subscribes before the message
is queued, so a fast answer cannot slip past it.
"""

import asyncio
import contextlib

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parley.contracts import subjects
from parley.contracts.acl import AclMessage

__all__ = ["Waiter"]

_decode_message = msgspec.json.Decoder(AclMessage).decode


class Waiter:
    """The first reply to one message of one conversation, as it is announced."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.reply: asyncio.Future[AclMessage] = asyncio.get_running_loop().create_future()
        self._sub: Subscription | None = None

    async def listen(self, nc: Client, message_id: str) -> "Waiter":
        """Subscribe to the replies of ``message_id``."""
        self._sub = await nc.subscribe(subjects.reply_notice(message_id), cb=self._on_reply)
        return self

    async def _on_reply(self, msg: Msg) -> None:
        if self.reply.done():
            return
        try:
            reply = _decode_message(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if reply.conversation_id == self.conversation_id:
            self.reply.set_result(reply)

    async def wait(self, seconds: float) -> AclMessage | None:
        """The reply, waiting at most ``seconds`` for it (None if none came)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.reply), seconds)
        except TimeoutError:
            return self.reply.result() if self.reply.done() else None

    async def close(self) -> None:
        """Stop listening."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
