"""The dev stack's nats-server runs on half the cores: it shares them with the services."""

import asyncio
from pathlib import Path

import pytest

from parley.devstack.nats import NatsServer
from parley.devstack.nats import shared_procs


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.parametrize(("cpus", "procs"), [(1, 1), (2, 1), (3, 1), (8, 4)])
def test_a_shared_server_gets_half_the_cores_and_at_least_one(cpus: int, procs: int) -> None:
    assert shared_procs(cpus) == procs


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
async def test_the_server_runs_with_its_procs_unless_the_environment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    shared = await asyncio.to_thread(NatsServer(tmp_path / "a", procs=1).start)
    alone = await asyncio.to_thread(NatsServer(tmp_path / "b").start)
    monkeypatch.setenv("GOMAXPROCS", "2")
    told = await asyncio.to_thread(NatsServer(tmp_path / "c", procs=1).start)
    try:
        assert shared.process is not None and alone.process is not None
        assert told.process is not None
        assert _environment(shared.process.pid).get("GOMAXPROCS") == "1"
        assert "GOMAXPROCS" not in _environment(alone.process.pid)
        assert _environment(told.process.pid).get("GOMAXPROCS") == "2"
    finally:
        for server in (shared, alone, told):
            await asyncio.to_thread(server.stop)
