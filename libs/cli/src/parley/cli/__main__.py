"""``parley``: the command line.

Every command group registers itself on :data:`parley.cli.app.app` when imported here.
:func:`main` turns a :class:`~parley.cli.exits.CliFailure` into its message on stderr and its
exit code (see :mod:`parley.cli.exits`), never a traceback; Ctrl-C exits 130.
"""

import sys

import click

from parley.cli import (  # noqa: F401 - each module adds its commands to the app
    agents,
    chat,
    clusters,
    deployments,
    eventlog,
    events,
    keys,
    login,
    messages,
    tasks,
)
from parley.cli.app import app
from parley.cli.exits import CliFailure, Exit

__all__ = ["app", "main"]


def main() -> None:
    """The ``parley`` console script."""
    try:
        code = app(standalone_mode=False)
    except CliFailure as failure:
        for line in failure.lines():
            click.echo(line, err=True)
        sys.exit(failure.exit)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as usage:
        usage.show()
        sys.exit(usage.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("parley: interrupted", err=True)
        sys.exit(Exit.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else Exit.OK)


if __name__ == "__main__":
    main()
