"""The work behind `parley export` and `parley import`: open the configured store, move the
log with a progress bar on stderr, report what was moved. (Kept apart from the commands so
the other commands start without loading the NATS client.)"""

import asyncio
import sys
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn

from parley.cli.backup import ImportRefused
from parley.cli.backup import LogSummary
from parley.cli.backup import export_log
from parley.cli.backup import import_log
from parley.cli.store import StoreOptions
from parley.cli.store import open_configured_store
from parley.eventstore.port import EventStore
from parley.eventstore.port import EventStoreError
from parley.kit.settings import SettingsError

__all__ = ["export_to", "import_from"]

err = Console(stderr=True)
T = TypeVar("T")


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


def export_to(options: StoreOptions, out: Path | None) -> None:
    """Write the store's whole log to ``out`` (None: stdout)."""

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


def import_from(options: StoreOptions, file: Path) -> None:
    """Load the log in ``file`` into the (empty) store."""

    async def work(store: EventStore) -> LogSummary:
        with _progress("imported") as bar:
            task = bar.add_task("import", total=None)
            return await import_log(store, file, lambda n: bar.update(task, completed=n))

    _report("imported", _run(options, work))
