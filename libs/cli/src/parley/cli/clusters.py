"""`parley clusters`: apply manifests (declarative, like `kubectl apply`), list, read,
scale, pause, resume and delete clusters, and their group runs."""

from typing import Annotated
from typing import Any

import typer

from parley.cli.answers import show
from parley.cli.answers import show_list
from parley.cli.app import api
from parley.cli.app import group
from parley.cli.client import Api
from parley.cli.client import given
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.files import InputFile
from parley.cli.files import read_manifest
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit
from parley.cli.output import emit_item
from parley.cli.watching import follow
from parley.cli.watching import parse_value

__all__ = ["clusters", "runs"]

clusters = group("clusters", "Clusters: groups of agents deployed from one manifest.")
runs = typer.Typer(help="Group runs of a cluster.", no_args_is_help=True)
clusters.add_typer(runs, name="runs")

COLUMNS = columns("name, state, strategy, AGENTS=agents_count, labels, UPDATED=updated_at")
RUN_COLUMNS = columns("RUN=run_id, status, strategy, result, winner, error")
Name = Annotated[str, typer.Argument(help="the cluster's name")]


def _wanted_instances(manifest: dict[str, Any]) -> dict[str, int]:
    """Agent name → `instances` for the agents whose manifest sets them."""
    spec = manifest.get("spec") or {}
    template = spec.get("template")
    if isinstance(template, dict):
        agent = template.get("spec") or {}
        if "instances" not in agent:
            return {}
        count = int(template.get("replicas", 1))
        return {f"{agent['name']}-{n}": int(agent["instances"]) for n in range(1, count + 1)}
    return {a["name"]: int(a["instances"]) for a in spec.get("agents") or [] if "instances" in a}


def _converge(client: Api, name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Scale the existing cluster's agents to the manifest's `instances`; the scales."""
    current = client.get(f"/api/v1/clusters/{name}")
    have = {a["name"]: a.get("instances") for a in current["agents"]}
    missing = sorted(set(_wanted_instances(manifest)) - set(have))
    if missing:
        raise CliFailure(
            "CLUSTER_EXISTS",
            f"cluster {name} exists without agents {', '.join(missing)}; apply can only scale an "
            f"existing cluster: `parley clusters rm {name}` and apply again to change its agents",
            Exit.CONFLICT,
        )
    scaled = []
    for agent, instances in sorted(_wanted_instances(manifest).items()):
        if have[agent] != instances:
            body = {"agent_name": agent, "instances": instances}
            scaled.append(client.post(f"/api/v1/clusters/{name}/scale", body))
    return scaled


@clusters.command("apply")
def apply(
    file: InputFile,
    start: Annotated[bool, typer.Option(help="start the agents of a new cluster")] = True,
    output: Output = Format.table,
) -> None:
    """Create the cluster a manifest describes, or bring an existing one's instances to it.

    An existing cluster is changed only where the API allows it: agents whose `instances`
    differ are scaled. Other changes need `parley clusters rm` first.
    """
    text, manifest = read_manifest(file)
    name = manifest["metadata"]["name"]
    media = "application/json" if file.suffix == ".json" else "application/yaml"
    with api() as client:
        try:
            client.get(f"/api/v1/clusters/{name}")
        except CliFailure as failure:
            if failure.exit is not Exit.NOT_FOUND:
                raise
            params = {"start": str(start).lower()}
            created = client.upload("/api/v1/clusters", text, media, params=params)
            emit_item({"action": "created", "cluster": created}, output, f"cluster/{name} created")
            return
        scaled = _converge(client, name, manifest)
    action = "scaled" if scaled else "unchanged"
    emit_item({"action": action, "scaled": scaled}, output, f"cluster/{name} {action}")


@clusters.command("ls")
def list_clusters(
    state: Annotated[str | None, typer.Option(help="active or paused")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value, all must match")] = None,
    output: Output = Format.table,
) -> None:
    """List the namespace's clusters."""
    show_list("/api/v1/clusters", {"state": state, "label": label}, output, COLUMNS)


@clusters.command("get")
def get_cluster(name: Name, output: Output = Format.table) -> None:
    """Show a cluster and its agents."""
    with api() as client:
        cluster = client.get(f"/api/v1/clusters/{name}")
    if output is not Format.table:
        emit(cluster, output)
        return
    emit(cluster, output, COLUMNS)
    emit(cluster["agents"], output, columns("name, id, status, instances"))


@clusters.command("scale")
def scale(
    name: Name,
    agent: Annotated[str, typer.Argument(help="the agent's name in the cluster")],
    instances: Annotated[int, typer.Argument(help="its instances (concurrency slots)", min=0)],
    output: Output = Format.table,
) -> None:
    """Set the instances of one agent of a cluster."""
    with api() as client:
        body = {"agent_name": agent, "instances": instances}
        emit(client.post(f"/api/v1/clusters/{name}/scale", body), output)


def _cluster_action(action: str) -> None:
    def command(name: Name, output: Output = Format.table) -> None:
        with api() as client:
            emit(
                client.data("PATCH", f"/api/v1/clusters/{name}", json={"action": action}),
                output,
                COLUMNS,
            )

    command.__doc__ = f"{action.capitalize()} every agent of a cluster."
    clusters.command(action)(command)


for _action in ("pause", "resume"):
    _cluster_action(_action)


@clusters.command("rm")
def delete_cluster(name: Name) -> None:
    """Stop and delete every agent of a cluster, and the cluster."""
    with api() as client:
        client.call("DELETE", f"/api/v1/clusters/{name}")
    typer.echo(f"cluster/{name} deleted", err=True)


@runs.command("start")
def start_run(
    name: Name,
    input: Annotated[str, typer.Option("--input", "-i", help="the input (JSON, else text)")],
    strategy: Annotated[
        str | None, typer.Option(help="parallel, map-reduce, pipeline, race")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds the run may take")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the result")] = True,
    output: Output = Format.table,
) -> None:
    """Run the cluster's agents on an input; with `--wait` (the default), until it ends."""
    body = {"input": parse_value(input), "strategy": strategy, "timeout_seconds": timeout}
    with api() as client:
        run = client.post(f"/api/v1/clusters/{name}/runs", given(body))
        if wait:
            path = f"/api/v1/clusters/{name}/runs/{run['run_id']}"
            run = follow(lambda: client.get(path), lambda r: r["status"] != "running", _noop)
    emit(run, output, RUN_COLUMNS)
    if run["status"] == "failed":
        raise CliFailure("RUN_FAILED", run.get("error") or "the run failed", Exit.FAILED)


def _noop(_: Any) -> None:
    pass


@runs.command("get")
def get_run(
    name: Name,
    run_id: Annotated[str, typer.Argument(help="the run's id")],
    output: Output = Format.table,
) -> None:
    """Show a group run: each agent's part and the result."""
    show(f"/api/v1/clusters/{name}/runs/{run_id}", output, RUN_COLUMNS)
