"""`parley export` and `parley import`: the event log out as CloudEvents NDJSON and back into
a fresh store, run as the real console script against real nats-servers.

The recorded history of ``tests/data`` goes in, comes out identical, survives a second trip,
and a stack started on the copy serves the views recorded with the original.
"""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from tests_support import capture_views
from tests_support import edge_client
from tests_support import view_differences

from parley.contracts.envelope import Event
from parley.devstack.nats import NatsServer
from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

DATA = Path(__file__).resolve().parents[1] / "data"
HISTORY = DATA / "history-v1.ndjson"
VIEWS = DATA / "views-v1.json"
PARLEY = Path(sys.executable).with_name("parley")


def parley(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PARLEY, *map(str, args)], capture_output=True, timeout=120)


def events_of(path: Path) -> list[Event]:
    return [msgspec.json.decode(line, type=Event) for line in path.read_bytes().splitlines()]


async def last_position(nats: NatsServer) -> int:
    store = await open_store(backend="jetstream", nats_url=nats.url)
    try:
        return await store.last_position()
    finally:
        await store.close()


@pytest.fixture
def nats_servers(tmp_path: Path):
    started: list[NatsServer] = []

    def start(name: str) -> NatsServer:
        server = NatsServer(tmp_path / name / "nats").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.timeout(240)
async def test_a_log_exported_and_imported_gives_the_same_events_and_views(
    tmp_path: Path, nats_servers
) -> None:
    first = nats_servers("first")
    done = parley("import", HISTORY, "--nats-url", first.url)
    assert done.returncode == 0, done.stderr.decode()
    recorded = events_of(HISTORY)
    assert f"imported {len(recorded)} events".encode() in done.stderr

    exported = tmp_path / "first.ndjson"
    done = parley("export", "--out", exported, "--nats-url", first.url)
    assert done.returncode == 0, done.stderr.decode()
    assert events_of(exported) == recorded  # ids, streams, versions, positions, data, time

    second = nats_servers("second")
    assert parley("import", exported, "--nats-url", second.url).returncode == 0
    to_stdout = parley("export", "--nats-url", second.url)
    assert to_stdout.returncode == 0
    assert to_stdout.stdout == exported.read_bytes()
    second.stop()  # the stack below starts its own server on this store

    stack = Stack(tmp_path / "second")
    await asyncio.to_thread(stack.start)
    try:
        views = json.loads(VIEWS.read_text())
        requests = [tuple(key.split(" ", 1)) for key in views]
        async with edge_client(stack, timeout=10) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while view_differences(views, await capture_views(client, requests)):
                assert loop.time() < deadline, "views differ after the import"
                await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(stack.stop)


async def test_an_import_into_a_store_that_holds_events_changes_nothing(
    tmp_path: Path, nats_servers
) -> None:
    server = nats_servers("held")
    assert parley("import", HISTORY, "--nats-url", server.url).returncode == 0
    before = await last_position(server)

    again = parley("import", HISTORY, "--nats-url", server.url)

    assert again.returncode == 1
    assert b"parley: the target store is not empty" in again.stderr
    assert b"Traceback" not in again.stderr
    assert await last_position(server) == before


def drop_a_streams_first_event(lines: list[bytes]) -> None:
    """Remove version 1 of a stream that goes on to version 2: a gap in its versions."""
    events = [msgspec.json.decode(line, type=Event) for line in lines]
    longer = next(e.stream for e in events if e.version == 2)
    lines.pop(next(i for i, e in enumerate(events) if e.stream == longer))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda lines: lines.__setitem__(2, b'{"id": "x"'), b":3: not a Parley event"),
        (drop_a_streams_first_event, b"version 2, expected 1"),
        (lambda lines: lines.append(lines[0]), b"appears twice"),
    ],
    ids=["malformed line", "missing event", "repeated event"],
)
async def test_a_damaged_file_is_refused_before_anything_is_appended(
    tmp_path: Path, nats_servers, damage, reason: bytes
) -> None:
    lines = HISTORY.read_bytes().splitlines()
    damage(lines)
    damaged = tmp_path / "damaged.ndjson"
    damaged.write_bytes(b"\n".join(lines) + b"\n")
    server = nats_servers("fresh")

    done = parley("import", damaged, "--nats-url", server.url)

    assert done.returncode == 1, done.stderr.decode()
    assert reason in done.stderr
    assert await last_position(server) == 0


async def test_exporting_an_empty_store_writes_nothing(tmp_path: Path, nats_servers) -> None:
    server = nats_servers("empty")
    out = tmp_path / "empty.ndjson"

    done = parley("export", "-o", out, "--nats-url", server.url)

    assert done.returncode == 0
    assert out.read_bytes() == b""
    assert b"exported 0 events" in done.stderr


def test_a_wrong_command_line_is_a_usage_error() -> None:
    assert parley("import").returncode == 2
    assert parley("import", "/nonexistent.ndjson").returncode == 2
