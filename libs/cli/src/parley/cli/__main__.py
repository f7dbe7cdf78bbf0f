"""``parley``: the command line.

Every command group registers itself on :data:`parley.cli.app.app` when imported here.
:func:`main` turns a :class:`~parley.cli.exits.CliFailure` into its message on stderr and its
exit code (see :mod:`parley.cli.exits`), a wrong command line into its usage message and
exit code 2, Ctrl-C into exit code 130 — never a traceback.
"""

import sys

import typer
from typer.exceptions import TyperException

from parley.cli import agents  # noqa: F401 - each module adds its commands to the app
from parley.cli import chat  # noqa: F401 - each module adds its commands to the app
from parley.cli import clusters  # noqa: F401 - each module adds its commands to the app
from parley.cli import deployments  # noqa: F401 - each module adds its commands to the app
from parley.cli import eventlog  # noqa: F401 - each module adds its commands to the app
from parley.cli import events  # noqa: F401 - each module adds its commands to the app
from parley.cli import keys  # noqa: F401 - each module adds its commands to the app
from parley.cli import login  # noqa: F401 - each module adds its commands to the app
from parley.cli import messages  # noqa: F401 - each module adds its commands to the app
from parley.cli import tasks  # noqa: F401 - each module adds its commands to the app
from parley.cli.app import app
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit

__all__ = ["app", "main"]


def _usage(error: TyperException) -> int:
    """Show a command-line error as Click would; its exit code."""
    show = getattr(error, "show", None)
    if callable(show):
        show()
    else:
        typer.echo(f"parley: {error.format_message()}", err=True)
    return int(error.exit_code)


def main() -> None:
    """The `parley` console script."""
    try:
        code = app(standalone_mode=False)
    except CliFailure as failure:
        for line in failure.lines():
            typer.echo(line, err=True)
        sys.exit(failure.exit)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except TyperException as usage:
        sys.exit(_usage(usage))
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("parley: interrupted", err=True)
        sys.exit(Exit.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else Exit.OK)


if __name__ == "__main__":
    main()
