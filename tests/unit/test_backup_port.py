"""`parley export`/`import` speak only the event store port: a log exported from one store and
imported into another store of any backend is the same log (the e2e test runs it on
JetStream; here the in-memory store that passes the same contract suite stands in for a
second backend)."""

import io
from pathlib import Path

import msgspec

from parley.cli.backup import export_log
from parley.cli.backup import import_log
from parley.contracts.envelope import Event
from parley.eventstore.memory import MemoryEventStore

HISTORY = Path(__file__).resolve().parents[1] / "data" / "history-v1.ndjson"


async def test_a_log_moves_between_stores_through_the_port_unchanged(tmp_path: Path) -> None:
    recorded = [msgspec.json.decode(line, type=Event) for line in HISTORY.read_bytes().splitlines()]
    source = MemoryEventStore()
    imported = await import_log(source, HISTORY)
    assert (imported.events, imported.last_position) == (len(recorded), recorded[-1].position)

    out = io.BytesIO()
    exported = await export_log(source, out)
    copy = tmp_path / "copy.ndjson"
    copy.write_bytes(out.getvalue())
    target = MemoryEventStore()
    await import_log(target, copy)

    assert exported.events == len(recorded)
    for stream in {e.stream for e in recorded}:
        assert await target.read(stream) == await source.read(stream)
        assert [(e.id, e.version, e.data) for e in await target.read(stream)] == [
            (e.id, e.version, e.data) for e in recorded if e.stream == stream
        ]
