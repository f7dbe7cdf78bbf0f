"""Sending a task's or run's ACL messages through the messaging service, and what it recorded.

The messaging service owns delivery: :class:`Mailer` hands it each message (``send``) and
reports the reply, or None when it could not be reached. :func:`sent_message_ids` reads a
conversation's stream to tell which messages messaging recorded, so a restarted tasks
process sends only those that never left.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal

import msgspec
import nats.errors
from nats.aio.client import Client

from parley.aggregates import conversation
from parley.aggregates.mail import Mail
from parley.contracts import subjects
from parley.contracts.acl import SERVICE as MESSAGING
from parley.contracts.acl import MessageReply
from parley.contracts.acl import OutgoingMessage
from parley.contracts.acl import SendMessage
from parley.eventstore import EventStore
from parley.eventstore.repository import load
from parley.kit.telemetry import inject

__all__ = ["Mailer", "Protocol", "sent_message_ids"]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(MessageReply).decode

Protocol = Literal["fipa-contract-net", "fipa-request"]


class Mailer:
    """Sends ACL messages with the messaging service's ``send`` command."""

    def __init__(self, nc: Client, timeout: float) -> None:
        self.nc, self.timeout = nc, timeout

    async def send(
        self,
        mail: Mail,
        *,
        sender: str,
        conversation_id: str,
        namespace: str,
        protocol: Protocol,
        correlation: str | None = None,
    ) -> MessageReply | None:
        """Send one message; its reply, or None when messaging could not be reached."""
        content = mail.content
        message = OutgoingMessage(
            performative=mail.performative,
            sender=sender,
            receivers=list(mail.receivers),
            content=content,
            language=None if isinstance(content, str) else "json",
            protocol=protocol,
            conversation_id=conversation_id,
            reply_with=mail.message_id,
            in_reply_to=mail.in_reply_to,
            reply_by=mail.reply_by,
            message_id=mail.message_id,
        )
        command = SendMessage(message=message, namespace=namespace, request_id=correlation)
        try:
            msg = await self.nc.request(
                subjects.cmd(MESSAGING, "send"),
                _encode(command),
                timeout=self.timeout,
                headers=inject(),  # the trace and the acting principal go on
            )
            reply = _decode_reply(msg.data)
        except (nats.errors.Error, TimeoutError, msgspec.DecodeError) as exc:
            log.warning(
                "%s %s to %s not sent: %r",
                mail.performative,
                mail.message_id,
                list(mail.receivers),
                exc,
            )
            return None
        if not reply.ok and reply.error is not None:
            log.warning(
                "%s %s to %s refused: %s %s",
                mail.performative.value,
                mail.message_id,
                list(mail.receivers),
                reply.error.code,
                reply.error.message,
            )
        return reply

    async def send_all(
        self,
        mail: Sequence[Mail],
        *,
        sender: str,
        conversation_id: str,
        namespace: str,
        protocol: Protocol,
        correlation: str | None = None,
    ) -> list[MessageReply | None]:
        """Send every message at once; their replies in order."""
        sends = (
            self.send(
                m,
                sender=sender,
                conversation_id=conversation_id,
                namespace=namespace,
                protocol=protocol,
                correlation=correlation,
            )
            for m in mail
        )
        return list(await asyncio.gather(*sends))


async def sent_message_ids(store: EventStore, stream: str) -> set[str]:
    """Ids of the messages the messaging service recorded in a conversation (its stream)."""
    folded = await load(store, stream, conversation.evolve)
    return set(folded.state.messages) if folded.state is not None else set()
