"""`parley chat`: talk with an agent. Tokens stream as they come, tool calls and their
results show as they happen, and Ctrl-C cancels the turn in flight (the session goes on;
Ctrl-C at the prompt, Ctrl-D or `/quit` ends it)."""

import json
import sys
from typing import Annotated
from typing import Any

import typer
from rich.markup import escape

from parley.cli.app import api
from parley.cli.app import app
from parley.cli.client import Api
from parley.cli.client import given
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.lookups import agent_id
from parley.cli.lookups import agent_names
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import emit_item
from parley.cli.output import out
from parley.cli.watching import parse_value

__all__ = ["chat"]


class _Turn:
    """What is known of the turn in flight: its ids, and whether it ended in error."""

    def __init__(self) -> None:
        self.turn_id: str | None = None
        self.conversation_id: str | None = None
        self.error: dict[str, Any] | None = None


def _show(kind: str, data: dict[str, Any]) -> None:
    """One frame, for a person."""
    if kind == "token":
        sys.stdout.write(str(data.get("text", "")))
        sys.stdout.flush()
    elif kind == "tool_call":
        arguments = json.dumps(data.get("arguments", {}), ensure_ascii=False)
        out.print(f"\n[cyan]⚙ {escape(str(data.get('name')))}({escape(arguments)})[/cyan]")
    elif kind == "tool_result":
        shown = data.get("content") if data.get("ok") else (data.get("error") or {}).get("message")
        mark = "↳" if data.get("ok") else "✗"
        out.print(f"[cyan]  {mark} {escape(str(shown))[:500]}[/cyan]")
    elif kind == "plan":
        out.print(f"\n[magenta]plan: {escape(json.dumps(data.get('steps')))}[/magenta]")
    elif kind == "end":
        usage = data.get("usage") or {}
        tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        out.print(
            f"\n[dim]({data.get('outcome')}, {tokens} tokens, "
            f"{data.get('response_time_ms')} ms)[/dim]"
        )


def _run_turn(client: Api, agent: str, body: dict[str, Any], output: Format, turn: _Turn) -> None:
    """Stream one turn, printing each frame as it arrives."""
    with client.sse("POST", f"/api/v1/agents/{agent}/chat/stream", json=body) as frames:
        for frame in frames:
            data = frame.json() if frame.data else {}
            turn.turn_id = data.get("turn_id", turn.turn_id)
            turn.conversation_id = data.get("conversation_id", turn.conversation_id)
            if output is Format.table:
                _show(frame.event, data)
            else:
                emit_item({"event": frame.event, "data": data}, output, "")
            if frame.event == "error":
                turn.error = data
            if frame.event in ("end", "error"):
                return


def _cancel(client: Api, agent: str, turn: _Turn) -> None:
    """Ask the server to cancel the turn in flight (it may have just ended: fine)."""
    body = {"conversation_id": turn.conversation_id, "turn_id": turn.turn_id}
    try:
        client.post(f"/api/v1/agents/{agent}/cancel", {k: v for k, v in body.items() if v})
    except CliFailure as failure:
        if failure.code != "NO_ACTIVE_TURN":
            raise


def _turn(
    client: Api, agent: str, message: str, conversation: str | None, context: Any, output: Format
) -> tuple[_Turn, bool]:
    """One turn; whether Ctrl-C cancelled it."""
    turn = _Turn()
    turn.conversation_id = conversation
    body: dict[str, Any] = {"message": message, "conversation_id": conversation}
    if context is not None:
        body["context"] = context
    try:
        _run_turn(client, agent, given(body), output, turn)
    except KeyboardInterrupt:
        _cancel(client, agent, turn)
        emit_item(
            {"event": "cancelled", "data": {"turn_id": turn.turn_id}},
            output,
            "\n[yellow]^C cancelled[/yellow]",
        )
        return turn, True
    return turn, False


def _prompt() -> str | None:
    """The next line the user types; `None` to end (Ctrl-D, Ctrl-C, `/quit`)."""
    try:
        line = input("you> ")
    except (EOFError, KeyboardInterrupt):
        sys.stdout.write("\n")
        return None
    return None if line.strip() in ("/quit", "/exit") else line


@app.command("chat")
def chat(
    agent: Annotated[
        str,
        typer.Argument(
            help="the agent's name or id (it must be running)", autocompletion=agent_names
        ),
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="send one message and exit")
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", "-c", help="continue this conversation")
    ] = None,
    context: Annotated[str | None, typer.Option(help="data for the model (JSON)")] = None,
    output: Output = Format.table,
) -> None:
    """Chat with an agent: interactively, or one `--message`.

    With `-o json` every frame is a JSON line (`{"event", "data"}`: start, token, plan,
    tool_call, tool_result, end or error).
    """
    extra = parse_value(context) if context is not None else None
    with api(timeout=60) as client:
        target = agent_id(client, agent)
        # The conversation exists before the first turn, so a Ctrl-C that comes before the
        # turn's first frame still cancels only this conversation's turn.
        conversation = conversation or client.post("/api/v1/sessions", {"agent_id": target})["id"]
        if message is not None:
            turn, cancelled = _turn(client, target, message, conversation, extra, output)
            if cancelled:
                raise CliFailure("CANCELLED", "the turn was cancelled", Exit.INTERRUPTED)
            if turn.error is not None:
                raise CliFailure(
                    str(turn.error.get("code")), str(turn.error.get("message")), Exit.FAILED
                )
            return
        out.print(
            f"[dim]chatting with {escape(agent)} in conversation {conversation} "
            "(`parley chat -c` resumes it): Ctrl-C cancels a turn, Ctrl-D ends[/dim]"
        )
        while (line := _prompt()) is not None:
            if not line.strip():
                continue
            turn, _ = _turn(client, target, line, conversation, extra, output)
            if turn.error is not None:
                out.print(
                    f"\n[red]{escape(str(turn.error.get('code')))}: "
                    f"{escape(str(turn.error.get('message')))}[/red]"
                )
