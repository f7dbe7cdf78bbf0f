"""`parley tasks`: Contract Net tasks — create, distribute (and watch the round live: the
cfp, each bid as it arrives, refusals, the award, the result), list, read, cancel."""

from typing import Annotated
from typing import Any

import typer

from parley.cli.answers import show
from parley.cli.answers import show_action
from parley.cli.answers import show_list
from parley.cli.app import api
from parley.cli.app import current_target
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
from parley.cli.output import emit_item
from parley.cli.watching import parse_value
from parley.contracts.tasks import task_stream

__all__ = ["tasks"]

tasks = group("tasks", "Contract Net tasks: put work out to tender.")

COLUMNS = columns("TASK=task_id, name, status, assigned_to, round, result, FAILURE=failure_reason")
_ENDS = {"task.completed", "task.failed", "task.cancelled"}
Task = Annotated[str, typer.Argument(help="the task's id")]


@tasks.command("create")
def create_task(
    name: Annotated[str, typer.Option(help="what the task is called")],
    description: Annotated[str, typer.Option()] = "",
    data: Annotated[str | None, typer.Option(help="the work (JSON, else text)")] = None,
    participant: Annotated[
        list[str] | None, typer.Option(help="a candidate agent (name or id); repeatable")
    ] = None,
    capability: Annotated[
        list[str] | None, typer.Option(help="candidates need every one (instead of participants)")
    ] = None,
    min_score: Annotated[float | None, typer.Option(help="minimum performance score")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds the contractor has")] = None,
    task_id: Annotated[str | None, typer.Option(help="choose the id")] = None,
    output: Output = Format.table,
) -> None:
    """Create a task; candidates are the participants, or the agents meeting requirements."""
    with api() as client:
        requirements = {"capabilities": capability, "min_performance_score": min_score}
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "data": parse_value(data) if data is not None else None,
            "participants": [agent_id(client, p) for p in participant or []] or None,
            "requirements": {k: v for k, v in requirements.items() if v} or None,
            "timeout_seconds": timeout,
            "task_id": task_id,
        }
        created = client.post("/api/v1/tasks", given(body))
    emit(created, output, COLUMNS)


def _line(kind: str, data: dict[str, Any], names: dict[str, str]) -> str:
    """One event of the round, for a person (agents by name)."""
    who = names.get(data.get("agent_id", ""), data.get("agent_id", ""))
    proposal = data.get("proposal") or {}
    bid = (
        f"cost {proposal.get('cost')}, {proposal.get('estimated_time_s')} s, "
        f"confidence {proposal.get('confidence')}"
    )
    lines = {
        "task.created": f"created {data.get('task_id')}",
        "task.cfp_sent": f"cfp → {len(data.get('candidates', []))} candidates, "
        f"strategy {data.get('strategy')}, bids until {data.get('reply_by')}",
        "task.proposal_received": f"[cyan]bid[/cyan]     {who}: {bid}",
        "task.refused": f"[yellow]refused[/yellow] {who}: {data.get('reason')}",
        "task.awarded": f"[green]awarded[/green] {who} (score {data.get('score')}, round "
        f"{data.get('round')}): {bid}",
        "task.rejected": f"rejected {who}: {data.get('reason')}",
        "task.progress": f"progress {who}: {data.get('percent')} {data.get('note', '')}",
        "task.completed": f"[green]completed[/green] by {who}: {data.get('result')}",
        "task.failed": f"[red]failed[/red]: {data.get('reason')}",
        "task.cancelled": f"cancelled: {data.get('reason')}",
    }
    return lines.get(kind, kind)


def _watch(client: Api, task: dict[str, Any], output: Format, until_award: bool) -> str:
    """Print the task's events as they come, until it ends (or is awarded); the last type."""
    namespace = task.get("namespace") or current_target().namespace or "default"
    params = {"stream": task_stream(namespace, task["task_id"]), "from_position": 0}
    last = ""
    names: dict[str, str] = {}
    if output is Format.table:
        names = {a["id"]: a["spec"]["name"] for a in client.items("/api/v1/agents", {})}
    with client.sse("GET", "/api/v1/events", params=params) as events:
        for event in events:
            envelope = event.json()
            last = event.event
            emit_item(envelope, output, _line(last, envelope.get("data") or {}, names))
            if last in _ENDS or (until_award and last == "task.awarded"):
                break
    return last


@tasks.command("distribute")
def distribute(
    task_id: Task,
    strategy: Annotated[
        str | None, typer.Option(help="best_bid, lowest_cost, fastest, highest_confidence")
    ] = None,
    max_wait: Annotated[float | None, typer.Option(help="seconds bids are taken")] = None,
    watch: Annotated[bool, typer.Option(help="show the round live until the task ends")] = False,
    until_award: Annotated[bool, typer.Option(help="with --watch: stop at the award")] = False,
    output: Output = Format.table,
) -> None:
    """Send the cfp; with `--watch`, the round live: bids as they arrive, then the award
    and the result (`-o json`: one event envelope per line). A failed task exits 1."""
    body = {"strategy": strategy, "max_wait_seconds": max_wait}
    with api() as client:
        task = client.post(f"/api/v1/tasks/{task_id}/distribute", given(body))
        if not watch:
            emit(task, output, COLUMNS)
            return
        last = _watch(client, task, output, until_award)
    if last == "task.failed":
        raise CliFailure("TASK_FAILED", f"task {task_id} failed", Exit.FAILED)


@tasks.command("ls")
def list_tasks(
    status: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    limit: Limit = None,
    output: Output = Format.table,
) -> None:
    """List tasks, oldest first."""
    show_list("/api/v1/tasks", {"status": status, "name": name}, output, COLUMNS, limit)


@tasks.command("get")
def get_task(task_id: Task, output: Output = Format.table) -> None:
    """Show a task: its proposals, award, result."""
    show(f"/api/v1/tasks/{task_id}", output, COLUMNS + columns("proposals, winning_bid"))


@tasks.command("cancel")
def cancel_task(
    task_id: Task,
    reason: Annotated[str | None, typer.Option()] = None,
    output: Output = Format.table,
) -> None:
    """Cancel a task (its contractor is sent a FIPA cancel)."""
    show_action(f"/api/v1/tasks/{task_id}/cancel", output, COLUMNS, reason=reason)
