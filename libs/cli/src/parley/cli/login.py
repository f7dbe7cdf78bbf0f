"""`parley login` and `parley contexts`: edges and keys saved in the config file (mode
0600), one of them current."""

from typing import Annotated

import typer

from parley.cli.app import app
from parley.cli.app import group
from parley.cli.client import Api
from parley.cli.config import DEFAULT_URL
from parley.cli.config import Context
from parley.cli.config import Target
from parley.cli.config import config_path
from parley.cli.config import load
from parley.cli.config import save
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit

__all__ = ["contexts", "login"]

contexts = group("contexts", "Saved contexts: an edge, a key, a namespace each.")


@app.command("login")
def login(
    url: Annotated[str, typer.Option("--url", envvar="PARLEY_URL", help="the edge")] = DEFAULT_URL,
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="PARLEY_API_KEY",
            prompt="API key",
            hide_input=True,
            help="the key (asked for when not given; PARLEY_API_KEY)",
        ),
    ] = "",
    context: Annotated[str, typer.Option("--context", help="the context's name")] = "default",
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="the namespace commands act in")
    ] = "default",
) -> None:
    """Check a key against an edge, then save both as a context and make it current."""
    target = Target(url=url.rstrip("/"), api_key=api_key, namespace=namespace, context=context)
    client = Api(target)
    try:
        client.get("/api/v1/agents", limit=1)  # any role may read: a 401 says the key is bad
    finally:
        client.close()
    config = load()
    config.contexts[context] = Context(url=target.url, api_key=api_key, namespace=namespace)
    config.current_context = context
    path = save(config)
    typer.echo(f"parley: logged in to {target.url} as context {context!r} ({path})", err=True)


@contexts.command("ls")
def list_contexts(output: Output = Format.table) -> None:
    """List the saved contexts (keys are not shown)."""
    config = load()
    rows = [
        {
            "name": name,
            "current": name == config.current_context,
            "url": context.url,
            "namespace": context.namespace,
        }
        for name, context in sorted(config.contexts.items())
    ]
    emit(rows, output, columns("name, current, url, namespace"))


@contexts.command("use")
def use_context(name: Annotated[str, typer.Argument(help="a saved context")]) -> None:
    """Make a saved context the current one."""
    config = load()
    if name not in config.contexts:
        raise CliFailure("NO_SUCH_CONTEXT", f"no context {name!r} in {config_path()}", Exit.USAGE)
    config.current_context = name
    save(config)


@contexts.command("rm")
def remove_context(name: Annotated[str, typer.Argument(help="a saved context")]) -> None:
    """Forget a saved context (and its key)."""
    config = load()
    config.contexts.pop(name, None)
    if config.current_context == name:
        config.current_context = None
    save(config)
