"""Backup and move: the whole event log as CloudEvents NDJSON, and back into an empty store.

One line per event, in global position order, each the JSON of a recorded
:class:`~parley.contracts.envelope.Event` (a CloudEvent with Parley's extensions: ``stream``,
``version``, ``position``, ``namespace``, ``actor``, …). :func:`export_log` writes it from
any store; :func:`import_log` checks a whole file first and only then appends it, event by
event at its recorded stream version, so a bad file changes nothing and a good one lands
with the same ids, streams, versions and order — the views folded from it are the same.
"""

from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.eventstore.port import EventStore

__all__ = ["ImportRefused", "LogSummary", "check_log", "export_log", "import_log"]

Progress = Callable[[int], None]
"""Called with the number of events done so far."""

_NEW_EVENT_FIELDS = NewEvent.__struct_fields__


class ImportRefused(Exception):
    """The file or the target store cannot take this import; nothing was appended."""


class LogSummary(msgspec.Struct, frozen=True):
    """What a log holds."""

    events: int
    streams: int
    last_position: int


def _no_progress(done: int) -> None:
    pass


async def export_log(
    store: EventStore, out: IO[bytes], progress: Progress = _no_progress
) -> LogSummary:
    """Write every event of ``store`` recorded up to now to ``out``, one JSON line each."""
    last = await store.last_position()
    streams: set[str] = set()
    count = 0
    if last == 0:
        return LogSummary(0, 0, 0)
    encoder = msgspec.json.Encoder()
    feed = store.subscribe(0)
    try:
        async for event in feed:
            out.write(encoder.encode(event) + b"\n")
            streams.add(event.stream)
            count += 1
            progress(count)
            if event.position >= last:
                break
    finally:
        await feed.close()
    return LogSummary(count, len(streams), last)


def _events(path: Path) -> Iterator[tuple[int, Event]]:
    decoder = msgspec.json.Decoder(Event)
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ImportRefused(f"{path}:{number}: not a Parley event: {exc}") from None


def check_log(path: Path) -> LogSummary:
    """Read the whole file: every line an event, each stream's versions 1, 2, 3… in file
    order, no event id twice, positions increasing.

    Raises:
        ImportRefused: naming the first line that breaks a rule.
    """
    versions: dict[str, int] = {}
    ids: set[str] = set()
    position = count = 0
    for number, event in _events(path):
        if event.id in ids:
            raise ImportRefused(f"{path}:{number}: event id {event.id} appears twice")
        expected = versions.get(event.stream, 0) + 1
        if event.version != expected:
            raise ImportRefused(
                f"{path}:{number}: {event.stream} version {event.version}, expected {expected}"
            )
        if event.position <= position:
            raise ImportRefused(
                f"{path}:{number}: position {event.position} does not follow {position}"
            )
        versions[event.stream] = event.version
        ids.add(event.id)
        position = event.position
        count += 1
    return LogSummary(count, len(versions), position)


async def import_log(
    store: EventStore, path: Path, progress: Progress = _no_progress
) -> LogSummary:
    """Append the log at ``path`` to ``store``, which must be empty.

    Raises:
        ImportRefused: the file breaks a rule of :func:`check_log`, or the store already
            holds events. Nothing is appended then.
    """
    summary = check_log(path)
    if (held := await store.last_position()) != 0:
        raise ImportRefused(
            f"the target store is not empty (its last position is {held}): import only into "
            "a fresh store"
        )
    for done, (_, event) in enumerate(_events(path), start=1):
        new = NewEvent(**{name: getattr(event, name) for name in _NEW_EVENT_FIELDS})
        await store.append(event.stream, [new], expected_version=event.version - 1)
        progress(done)
    return summary
