"""`parley deploy` rolls a new definition of an agent out (a canary by stages, or at once)
and follows it live — the stages, the traffic split, the health figures — and `parley
deployments` lists, follows, promotes, pauses, resumes and rolls back deployments."""

import re
from typing import Annotated
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from parley.cli.answers import show
from parley.cli.answers import show_action
from parley.cli.app import api
from parley.cli.app import app
from parley.cli.app import group
from parley.cli.client import Api
from parley.cli.client import given
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.files import InputFile
from parley.cli.files import read_definition
from parley.cli.lookups import agent_id
from parley.cli.lookups import agent_names
from parley.cli.options import Limit
from parley.cli.options import Reason
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit
from parley.cli.output import emit_item
from parley.cli.output import out
from parley.cli.watching import follow

__all__ = ["deploy", "deployments", "parse_stages"]

deployments = group("deployments", "Deployments: roll new definitions out, and back.")

COLUMNS = columns(
    "DEPLOYMENT=id, AGENT=agent_id, VERSION=version_label, strategy, status,"
    " SPLIT %=percentage, reason"
)
_DONE = {"completed", "rolled_back", "failed"}
_STAGE = re.compile(r"^(\d{1,3})(?::(\d+(?:\.\d+)?)([smhd]?))?$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_stages(text: str) -> list[dict[str, Any]]:
    """`10:5m,50:10m,100` → stages (percentage, duration in seconds)."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _STAGE.match(part)
        if match is None:
            raise CliFailure(
                "BAD_ARGUMENT",
                f"--canary takes percent:duration stages like 10:5m,50:10m (not {part!r})",
                Exit.USAGE,
            )
        percent, amount, unit = match.groups()
        duration = float(amount or 0) * _UNIT[unit]
        stages.append({"percentage": int(percent), "duration_s": duration})
    return stages


def _view(deployment: dict[str, Any]) -> Group:
    """The live picture: status and split, the stages, the health figures."""
    new = deployment["percentage"]
    bar = "█" * (new // 5) + "░" * (20 - new // 5)
    head = (
        f"[bold]{deployment['version_label']}[/bold] of {deployment['spec']['name']}: "
        f"[bold]{deployment['status']}[/bold]   new {new}% {bar} old {100 - new}%"
    )
    stages = Table("STAGE", "SPLIT %", "DURATION", "STARTED", "ENDED", box=None, pad_edge=False)
    for n, stage in enumerate(deployment.get("stages") or []):
        marker = "▶ " if n == deployment.get("current_stage") else "  "
        stages.add_row(
            f"{marker}{n + 1}",
            str(stage["percentage"]),
            f"{stage['duration_s']:g}s",
            stage.get("started_at") or "",
            stage.get("ended_at") or "",
        )
    health = deployment.get("health") or {}
    figures = (
        f"health: {health.get('samples', 0)} samples, {health.get('errors', 0)} errors, "
        f"p99 {health.get('p99_ms') or '-'} ms (rollback past {deployment['error_threshold']:.0%} "
        f"errors over {deployment['min_samples']} samples)"
    )
    parts: list[Any] = [head, stages, figures]
    if deployment.get("reason"):
        parts.append(f"reason: {deployment['reason']}")
    return Group(*parts)


def _line(deployment: dict[str, Any]) -> str:
    stage = deployment.get("current_stage")
    return (
        f"{deployment['status']}: stage {stage + 1 if stage is not None else '-'}, "
        f"new {deployment['percentage']}%, health {deployment.get('health')}"
    )


def _follow(client: Api, deployment: dict[str, Any], output: Format) -> dict[str, Any]:
    """Show the deployment as it changes until it finishes; exit 1 unless it completed."""
    path = f"/api/v1/deployments/{deployment['id']}"
    settled = lambda d: d["status"] in _DONE  # noqa: E731
    if output is Format.table and out.is_terminal:
        with Live(_view(deployment), console=out, refresh_per_second=4) as live:
            final = follow(lambda: client.get(path), settled, lambda d: live.update(_view(d)), 0.5)
    else:
        final = follow(lambda: client.get(path), settled, lambda d: emit_item(d, output, _line(d)))
    if final["status"] != "completed":
        reason = final.get("reason") or final["status"]
        raise CliFailure(
            final["status"].upper(), f"deployment {final['id']}: {reason}", Exit.FAILED
        )
    return dict(final)


@app.command("deploy")
def deploy(
    agent: Annotated[
        str, typer.Argument(help="the agent's name or id", autocompletion=agent_names)
    ],
    file: InputFile,
    canary: Annotated[
        str | None, typer.Option(help="stages percent:duration, e.g. 10:5m,50:10m")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="the version's name (default: file stem)")
    ] = None,
    error_threshold: Annotated[float | None, typer.Option(help="0–1, default 0.05")] = None,
    min_samples: Annotated[int | None, typer.Option(help="default 20")] = None,
    rollback_on_error: Annotated[bool, typer.Option(help="roll back by itself")] = True,
    watch: Annotated[bool, typer.Option(help="follow it live until it finishes")] = True,
    output: Output = Format.table,
) -> None:
    """Roll a new definition out: by `--canary` stages, else at once; followed live.

    Exits 0 once completed, 1 if it was rolled back or failed (`--no-watch`: at once).
    """
    definition = read_definition(file)
    body: dict[str, Any] = {
        "version_label": label or file.stem,
        "strategy": "canary" if canary else "immediate",
        "stages": parse_stages(canary) if canary else [],
        "rollback_on_error": rollback_on_error,
        "error_threshold": error_threshold,
        "min_samples": min_samples,
        **({"config": definition.text} if definition.is_toml else {"spec": definition.fields}),
    }
    with api() as client:
        body["agent_id"] = agent_id(client, agent)
        started = client.post("/api/v1/deployments", given(body))
        if not watch:
            emit(started, output, COLUMNS)
            return
        final = _follow(client, started, output)
    if output is Format.table:
        out.print(f"deployment {final['id']} completed: agent version {final['agent_version']}")


Deployment = Annotated[str, typer.Argument(help="the deployment's id")]


@deployments.command("ls")
def list_deployments(
    agent: Annotated[str | None, typer.Option(help="only this agent's (name or id)")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    limit: Limit = None,
    output: Output = Format.table,
) -> None:
    """List deployments, newest first."""
    with api() as client:
        params = {"agent_id": agent_id(client, agent) if agent else None, "status": status}
        found = client.get("/api/v1/deployments", **params)  # one list, not paged
        emit(found[:limit], output, COLUMNS)


@deployments.command("get")
def get_deployment(deployment_id: Deployment, output: Output = Format.table) -> None:
    """Show a deployment."""
    show(f"/api/v1/deployments/{deployment_id}", output, COLUMNS)


@deployments.command("watch")
def watch_deployment(deployment_id: Deployment, output: Output = Format.table) -> None:
    """Follow a deployment live until it finishes."""
    with api() as client:
        _follow(client, client.get(f"/api/v1/deployments/{deployment_id}"), output)


def _steer(action: str) -> None:
    def command(
        deployment_id: Deployment,
        reason: Reason = None,
        output: Output = Format.table,
    ) -> None:
        show_action(f"/api/v1/deployments/{deployment_id}/{action}", output, COLUMNS, reason=reason)

    command.__doc__ = f"{action.capitalize()} a deployment."
    deployments.command(action)(command)


for _action in ("promote", "pause", "resume", "rollback"):
    _steer(_action)
