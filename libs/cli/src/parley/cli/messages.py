"""`parley send` (a FIPA-ACL message, optionally waiting for the reply) and `parley
messages` (the recorded ones)."""

from typing import Annotated
from typing import Any

import typer

from parley.cli.answers import show
from parley.cli.app import api
from parley.cli.app import app
from parley.cli.app import group
from parley.cli.client import Api
from parley.cli.client import given
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.lookups import agent_id
from parley.cli.options import Limit
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit
from parley.cli.watching import parse_value

__all__ = ["messages", "send"]

messages = group("messages", "FIPA-ACL messages: the recorded ones.")

COLUMNS = columns(
    "MESSAGE=message_id, performative, sender, receivers, CONVERSATION=conversation_id, content"
)
SENT = columns(
    "MESSAGE=message_id, CONVERSATION=conversation_id, status, delivered_to,"
    " REPLY=reply.performative, REPLY CONTENT=reply.content, timed_out"
)


def _receiver(client: Api, ref: str) -> str:
    """An agent by name or id; principals (`user:…`, `task:…`, `run:…`) as they are."""
    return ref if ":" in ref else agent_id(client, ref)


@app.command("send")
def send(
    performative: Annotated[str, typer.Argument(help="request, inform, query-ref, cfp, …")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="a receiver: agent name or id, user:<name>")
    ] = None,
    capability: Annotated[
        str | None, typer.Option(help="route to the least loaded running agent with it")
    ] = None,
    broadcast: Annotated[bool, typer.Option(help="with --capability: to every one")] = False,
    content: Annotated[str, typer.Option(help="the content (JSON, else text)")] = "",
    sender: Annotated[str | None, typer.Option(help="default user:api")] = None,
    conversation: Annotated[str | None, typer.Option(help="conversation id")] = None,
    in_reply_to: Annotated[str | None, typer.Option(help="the message answered")] = None,
    reply_with: Annotated[str | None, typer.Option()] = None,
    protocol: Annotated[str | None, typer.Option(help="fipa-request, fipa-query, …")] = None,
    ontology: Annotated[str | None, typer.Option()] = None,
    wait: Annotated[
        float | None, typer.Option(help="wait this many seconds (≤ 300) for the first reply")
    ] = None,
    output: Output = Format.table,
) -> None:
    """Send a FIPA-ACL message; with `--wait`, show the first reply (exit 6 if none came)."""
    if not to and capability is None:
        raise CliFailure("BAD_ARGUMENT", "give --to (one or more) or --capability", Exit.USAGE)
    with api(timeout=(wait or 0) + 30) as client:
        body: dict[str, Any] = {
            "performative": performative,
            "receivers": [_receiver(client, r) for r in to or []] or None,
            "capability": capability,
            "broadcast": broadcast or None,
            "content": parse_value(content),
            "sender": sender,
            "conversation_id": conversation,
            "in_reply_to": in_reply_to,
            "reply_with": reply_with,
            "protocol": protocol,
            "ontology": ontology,
            "wait": wait,
        }
        answer = client.post("/api/v1/messages", given(body))
    emit(answer, output, SENT)
    if answer.get("timed_out"):
        raise CliFailure("TIMED_OUT", f"no reply within {wait} s", Exit.TIMEOUT)


@messages.command("ls")
def list_messages(
    conversation: Annotated[str | None, typer.Option(help="only this conversation")] = None,
    agent: Annotated[list[str] | None, typer.Option(help="sent or received by")] = None,
    performative: Annotated[list[str] | None, typer.Option()] = None,
    limit: Limit = None,
    output: Output = Format.table,
) -> None:
    """List recorded messages, oldest first."""
    with api() as client:
        agents = [_receiver(client, a) for a in agent or []]
        params = {"conversation_id": conversation, "agent_id": agents, "performative": performative}
        emit(client.items("/api/v1/messages", params, limit), output, COLUMNS)


@messages.command("get")
def get_message(
    message_id: Annotated[str, typer.Argument()], output: Output = Format.table
) -> None:
    """Show a message and its deliveries."""
    show(f"/api/v1/messages/{message_id}", output, COLUMNS + columns("status, deliveries"))
