"""The root ``parley`` command: global options (where and as whom), and :func:`api`, the
client a command uses."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from parley.cli.client import Api
from parley.cli.config import Target
from parley.cli.config import target

__all__ = ["api", "app", "current_target", "group"]

app = typer.Typer(
    name="parley",
    help="Parley from the command line: agents, clusters, chat, messages, tasks, deployments,"
    " events and keys over the edge's API; export and import of the event log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class _Global:
    url: str | None = None
    namespace: str | None = None
    context: str | None = None


def group(name: str, help: str) -> typer.Typer:
    """A command group (``parley agents …``) added to the root."""
    sub = typer.Typer(help=help, no_args_is_help=True, pretty_exceptions_enable=False)
    app.add_typer(sub, name=name)
    return sub


@app.callback()
def _options(
    url: Annotated[
        str | None, typer.Option("--url", help="the edge (default: PARLEY_URL, the context)")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="namespace (default: PARLEY_NAMESPACE, the context)"
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="a context saved by `parley login`")
    ] = None,
) -> None:
    """Parley from the command line."""
    _Global.url, _Global.namespace, _Global.context = url, namespace, context


def current_target() -> Target:
    """Where commands go: flags, then the environment, then the config file."""
    return target(_Global.url, _Global.namespace, _Global.context)


@contextmanager
def api(timeout: float = 30.0) -> Iterator[Api]:
    """A client for the current target, closed after the command."""
    client = Api(current_target(), timeout=timeout)
    try:
        yield client
    finally:
        client.close()
