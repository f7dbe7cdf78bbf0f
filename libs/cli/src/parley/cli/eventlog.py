"""``parley export`` and ``parley import``: the event log out as CloudEvents NDJSON and back
into an empty store, straight over NATS (not through the edge)."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from parley.cli.app import app
from parley.cli.backup import ImportRefused, LogSummary, export_log, import_log
from parley.cli.store import DEV_STATE, StoreOptions, open_configured_store
from parley.eventstore.port import EventStore, EventStoreError
from parley.kit.settings import SettingsError

__all__ = ["export_command", "import_command"]

err = Console(stderr=True)
T = TypeVar("T")

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


def _run(options: StoreOptions, work: Callable[[EventStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await open_configured_store(options)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except (ImportRefused, EventStoreError, SettingsError) as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(1) from None


def _progress(verb: str) -> Progress:
    return Progress(
        TextColumn(f"{verb} events"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _report(verb: str, summary: LogSummary) -> None:
    typer.echo(
        f"parley: {verb} {summary.events} events of {summary.streams} streams "
        f"(last position {summary.last_position})",
        err=True,
    )


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
    options = StoreOptions(backend, nats_url, kurrentdb_url, state_dir)

    async def work(store: EventStore) -> LogSummary:
        with _progress("exported") as bar:
            task = bar.add_task("export", total=await store.last_position())
            sink = sys.stdout.buffer if out is None else out.open("wb")
            try:
                return await export_log(store, sink, lambda n: bar.update(task, completed=n))
            finally:
                sink.flush()
                if out is not None:
                    sink.close()

    _report("exported", _run(options, work))


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
    options = StoreOptions(backend, nats_url, kurrentdb_url, state_dir)

    async def work(store: EventStore) -> LogSummary:
        with _progress("imported") as bar:
            task = bar.add_task("import", total=None)
            return await import_log(store, file, lambda n: bar.update(task, completed=n))

    _report("imported", _run(options, work))
