"""`parley export` and `parley import`: the event log out as CloudEvents NDJSON and back
into an empty store, straight over NATS (not through the edge)."""

from pathlib import Path
from typing import Annotated

import typer

from parley.cli.app import app

__all__ = ["DEV_STATE", "export_command", "import_command"]

DEV_STATE = Path(".state")
"""Where `just up` keeps its state (the NATS passwords among it)."""

Backend = Annotated[
    str | None, typer.Option(help="jetstream or kurrentdb (default: PARLEY_EVENTSTORE)")
]
NatsUrl = Annotated[str | None, typer.Option(help="NATS URL (default: PARLEY_NATS_URL)")]
KurrentUrl = Annotated[
    str | None, typer.Option(help="KurrentDB URL (default: PARLEY_KURRENTDB_URL)")
]
StateDir = Annotated[
    Path,
    typer.Option(
        help="a dev stack's state dir, whose NATS credentials are used when "
        "PARLEY_NATS_USER is not set"
    ),
]


@app.command("export")
def export_command(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")
    ] = None,
    backend: Backend = None,
    nats_url: NatsUrl = None,
    kurrentdb_url: KurrentUrl = None,
    state_dir: StateDir = DEV_STATE,
) -> None:
    """Write the whole event log as CloudEvents NDJSON, in position order."""
    from parley.cli import logjobs  # here: only these two commands need NATS
    from parley.cli import store  # here: only these two commands need NATS

    logjobs.export_to(store.StoreOptions(backend, nats_url, kurrentdb_url, state_dir), out)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    backend: Backend = None,
    nats_url: NatsUrl = None,
    kurrentdb_url: KurrentUrl = None,
    state_dir: StateDir = DEV_STATE,
) -> None:
    """Load an exported log into an empty store (JetStream or KurrentDB).

    The whole file is checked first; a bad line or a store that already holds events changes
    nothing.
    """
    from parley.cli import logjobs  # here: only these two commands need NATS
    from parley.cli import store  # here: only these two commands need NATS

    logjobs.import_from(store.StoreOptions(backend, nats_url, kurrentdb_url, state_dir), file)
