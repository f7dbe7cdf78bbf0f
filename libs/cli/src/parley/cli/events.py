"""`parley events`: the event log live (`tail`) and custom events (`emit`).

`tail` is resumable: every event shows its position, `--from` starts after one, and
`--checkpoint FILE` keeps the last position shown so the next run goes on from it. A
connection lost mid-stream is reopened after the last event seen: none missed, none twice.
"""

import os
import time
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.markup import escape

from parley.cli.app import api
from parley.cli.app import group
from parley.cli.client import Api
from parley.cli.exits import CliFailure
from parley.cli.lookups import agent_id
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import emit
from parley.cli.output import emit_item
from parley.cli.watching import parse_value

__all__ = ["events"]

events = group("events", "The event log: every change of state.")


def _read_checkpoint(path: Path | None) -> int | None:
    try:
        return int(path.read_text().strip()) if path else None
    except FileNotFoundError:
        return None
    except ValueError:
        return None


def _write_checkpoint(path: Path, position: int) -> None:
    draft = path.with_name(path.name + ".tmp")
    draft.write_text(f"{position}\n")
    os.replace(draft, path)  # never a half-written checkpoint


def _line(envelope: dict[str, Any]) -> str:
    subject = envelope.get("subject") or envelope.get("stream") or ""
    return (
        f"[dim]{envelope.get('position')}[/dim] {escape(str(envelope.get('time', '')))} "
        f"[bold]{escape(str(envelope.get('type')))}[/bold] {escape(str(subject))} "
        f"[dim]{escape(str(envelope.get('actor') or ''))}[/dim]"
    )


def _stream(
    client: Api, params: dict[str, Any], after: int | None, show: Any, count: int | None
) -> int:
    """Show events after position `after` until `count` were shown; how many were."""
    shown = 0
    query = {**params, "from_position": after} if after is not None else params
    with client.sse("GET", "/api/v1/events", params=query) as stream:
        for event in stream:
            show(event.json())
            shown += 1
            if count is not None and shown >= count:
                break
    return shown


@events.command("tail")
def tail(
    type: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="glob, e.g. 'agent.*'; repeatable")
    ] = None,
    stream: Annotated[list[str] | None, typer.Option(help="only these streams")] = None,
    agent: Annotated[list[str] | None, typer.Option(help="about these agents (name or id)")] = None,
    actor: Annotated[list[str] | None, typer.Option(help="caused by, e.g. key:<id>")] = None,
    from_position: Annotated[
        int | None, typer.Option("--from", help="start after this position (0: everything)")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="resume from, and keep, the last position in this file")
    ] = None,
    count: Annotated[int | None, typer.Option(help="stop after this many events")] = None,
    output: Output = Format.table,
) -> None:
    """Follow the event log: new events only, or from `--from`/`--checkpoint`.

    Ctrl-C ends it (exit 0). `-o json` prints one envelope per line.
    """
    last = _read_checkpoint(checkpoint)
    last = from_position if last is None else last
    with api() as client:
        agents = [agent_id(client, a) for a in agent or []]
        params = {"type": type, "stream": stream, "agent_id": agents, "actor": actor}
        params = {k: v for k, v in params.items() if v}
        left = count

        def show(envelope: dict[str, Any]) -> None:
            nonlocal last
            emit_item(envelope, output, _line(envelope))
            last = int(envelope["position"])
            if checkpoint is not None:
                _write_checkpoint(checkpoint, last)

        try:
            while left is None or left > 0:
                try:
                    shown = _stream(client, params, last, show, left)
                except CliFailure as failure:
                    if failure.code != "UNREACHABLE" or last is None:
                        raise
                    time.sleep(1)  # the edge restarts: reconnect after the last event shown
                    continue
                left = None if left is None else left - shown
                if shown == 0:
                    time.sleep(1)  # the edge closed an idle stream: open it again, gently
        except KeyboardInterrupt:
            return


@events.command("emit")
def emit_event(
    type: Annotated[str, typer.Argument(help="dotted lowercase, e.g. deploy.finished")],
    subject: Annotated[str, typer.Option(help="what it is about (stream custom-<subject>)")],
    data: Annotated[str, typer.Option(help="JSON")] = "{}",
    output: Output = Format.table,
) -> None:
    """Record a custom event."""
    body = {"type": type, "subject": subject, "data": parse_value(data)}
    with api() as client:
        emit(client.post("/api/v1/events", body), output)
