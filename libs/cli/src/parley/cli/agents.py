"""`parley agents`: list, read, create, edit, drive the lifecycle of, and delete agents."""

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
import yaml  # type: ignore[import-untyped]

from parley.cli.answers import show_list
from parley.cli.app import api
from parley.cli.app import group
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.files import InputFile
from parley.cli.files import read_definition
from parley.cli.lookups import agent_id
from parley.cli.lookups import agent_names
from parley.cli.options import Limit
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit

__all__ = ["AGENT_COLUMNS", "agents"]

agents = group("agents", "Agents: definitions and lifecycle.")

AGENT_COLUMNS = columns(
    "spec.name, id, state, spec.provider, spec.model, version, UPDATED=updated_at"
)

Agent = Annotated[str, typer.Argument(help="the agent's name or id", autocompletion=agent_names)]
Reason = Annotated[str | None, typer.Option(help="why (recorded in the event)")]


@agents.command("ls")
def list_agents(
    state: Annotated[list[str] | None, typer.Option(help="only these states")] = None,
    capability: Annotated[list[str] | None, typer.Option(help="having every one")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value, all must match")] = None,
    sort: Annotated[str, typer.Option(help="name, created_at, updated_at, state; :desc")] = "name",
    limit: Limit = None,
    output: Output = Format.table,
) -> None:
    """List the namespace's agents."""
    params = {"state": state, "capability": capability, "label": label, "sort": sort}
    show_list("/api/v1/agents", params, output, AGENT_COLUMNS, limit)


@agents.command("get")
def get_agent(agent: Agent, output: Output = Format.table) -> None:
    """Show one agent."""
    with api() as client:
        found = client.get(f"/api/v1/agents/{agent_id(client, agent)}")
    emit(found, output, AGENT_COLUMNS + columns("spec.capabilities"))


@agents.command("create")
def create_agent(
    file: InputFile,
    start: Annotated[bool, typer.Option(help="start it once created")] = False,
    output: Output = Format.table,
) -> None:
    """Create an agent from a TOML or JSON definition."""
    definition = read_definition(file)
    with api() as client:
        created = client.upload("/api/v1/agents", definition.text, definition.media_type)
        if start:
            created = client.post(f"/api/v1/agents/{created['id']}/start")
    emit(created, output, AGENT_COLUMNS)


def _set(spec: dict[str, Any], assignment: str) -> str:
    """Apply `path=value` (the value read as YAML: numbers, booleans, lists) to `spec`;
    the top-level field it changes."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise CliFailure("BAD_ARGUMENT", f"--set takes path=value, not {assignment!r}", Exit.USAGE)
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict | None) else {}
    node[leaf] = yaml.safe_load(raw) if raw else ""
    return path.split(".")[0]


def _edited(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec after the user's `$VISUAL`/`$EDITOR` changed it as YAML."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as draft:
        yaml.safe_dump(spec, draft, sort_keys=False, allow_unicode=True)
    try:
        if subprocess.run([*shlex.split(editor), draft.name], check=False).returncode != 0:
            raise CliFailure("EDIT_ABORTED", f"{editor} exited with an error", Exit.FAILED)
        changed = yaml.safe_load(Path(draft.name).read_text())
    except yaml.YAMLError as exc:
        raise CliFailure(
            "BAD_FILE", f"the edited definition is not YAML: {exc}", Exit.USAGE
        ) from None
    finally:
        os.unlink(draft.name)
    if not isinstance(changed, dict):
        raise CliFailure("BAD_FILE", "the edited definition is not a mapping", Exit.USAGE)
    return changed


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body from `before` to `after`: changed top-level fields, removed labels
    as `null` (labels merge)."""
    patch = {k: v for k, v in after.items() if before.get(k) != v}
    if "labels" in patch:
        old, new = before.get("labels") or {}, after.get("labels") or {}
        patch["labels"] = {**{k: None for k in old if k not in new}, **new}
    return patch


@agents.command("edit")
def edit_agent(
    agent: Agent,
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="path=value (e.g. description=x, params.temperature=0.2)"),
    ] = None,
    output: Output = Format.table,
) -> None:
    """Change an agent's definition: `--set` fields, or edit it as YAML in $EDITOR.

    The change is sent with the version read (If-Match): a change made meanwhile by someone
    else is a conflict (exit 5), not overwritten.
    """
    with api() as client:
        current = client.get(f"/api/v1/agents/{agent_id(client, agent)}")
        before = current["spec"]
        if assignments:
            after = yaml.safe_load(yaml.safe_dump(before))  # a deep copy
            for assignment in assignments:
                _set(after, assignment)
        else:
            after = _edited(before)
        patch = _changes(before, after)
        if not patch:
            typer.echo("parley: no changes", err=True)
            emit(current, output, AGENT_COLUMNS)
            return
        changed = client.data(
            "PATCH",
            f"/api/v1/agents/{current['id']}",
            json=patch,
            headers={"If-Match": f'"{current["version"]}"'},
        )
    emit(changed, output, AGENT_COLUMNS)


def _lifecycle(action: str) -> None:
    def command(
        agent: Agent,
        reason: Reason = None,
        force: Annotated[bool, typer.Option(help="stop: also leave `failed`")] = False,
        output: Output = Format.table,
    ) -> None:
        body: dict[str, Any] = {k: v for k, v in {"reason": reason, "force": force}.items() if v}
        with api() as client:
            answer = client.post(f"/api/v1/agents/{agent_id(client, agent)}/{action}", body)
        emit(answer, output, AGENT_COLUMNS)

    command.__doc__ = f"{action.capitalize()} an agent."
    agents.command(action)(command)


for _action in ("start", "pause", "resume", "stop"):
    _lifecycle(_action)


@agents.command("rm")
def delete_agent(agent: Agent, output: Output = Format.table) -> None:
    """Delete an agent (its events stay; the name is free again)."""
    with api() as client:
        emit(client.data("DELETE", f"/api/v1/agents/{agent_id(client, agent)}"), output)
