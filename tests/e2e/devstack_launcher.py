"""``just up`` as a user runs it, for the tests: ``python -m parley.devstack up`` in its own
session on free ports, its output read as it comes, its processes found by their command
lines, stopped with Ctrl-C."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parley.devstack.nats import SERVICES_USER
from parley.devstack.nats import free_port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that are free right now."""
    while True:
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()


@dataclass(frozen=True)
class Killed:
    """A part of the stack killed with SIGKILL by :meth:`Launcher.kill`."""

    before: dict[str, int]
    """The stack's pids just before."""
    mark: int
    """The launcher's lines printed before."""
    at: float
    """When (monotonic)."""


class Launcher:
    """One ``python -m parley.devstack up`` process and what it printed."""

    def __init__(self, state: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.edge_port = free_ports(2)
        self.nats_port = free_ports(3)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parley.devstack",
                "up",
                "--state-dir",
                str(state),
                "--port",
                str(self.edge_port),
                "--nats-port",
                str(self.nats_port),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "".join(self.lines)

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    def wait_for(self, pattern: str, within: float = 90.0, after: int = 0) -> re.Match[str]:
        """The first of the launcher's lines from line ``after`` on that matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if found := regex.search(line):
                        return found
                if self._ended:
                    raise AssertionError("the launcher exited:\n" + "".join(self.lines))
                if time.monotonic() > deadline:
                    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.lines))
                self._changed.wait(0.2)

    def up(self) -> "Launcher":
        """Wait until the launcher says the stack is up."""
        self.wait_for(r"^parley: up", within=180)
        return self

    def nats_urls(self, nodes: int = 1) -> list[str]:
        """The URL of each NATS node (``nodes``: 3 in a cluster), with the services'
        credentials."""
        password = (self.state / "nats" / f"{SERVICES_USER}.password").read_text().strip()
        return [
            f"nats://{SERVICES_USER}:{password}@127.0.0.1:{self.nats_port + i}"
            for i in range(nodes)
        ]

    def admin_key(self) -> str:
        return (self.state / "admin.key").read_text().strip()

    def start_edge(self, port: int, nodes: int = 1) -> "subprocess.Popen[bytes]":
        """One more edge (``python -m parley.edge``, not supervised) on ``port``, against
        this stack's NATS (``nodes``: 3 in a cluster), logging to ``<state>/edge-<port>.log``;
        the caller stops it."""
        addresses = (f"nats://127.0.0.1:{self.nats_port + i}" for i in range(nodes))
        env = {
            **os.environ,
            "PARLEY_NATS_URL": ",".join(addresses),
            "PARLEY_NATS_USER": SERVICES_USER,
            "PARLEY_NATS_PASSWORD_FILE": str(self.state / "nats" / f"{SERVICES_USER}.password"),
            "PARLEY_NATS_REPLICAS": str(nodes),
            "PARLEY_EDGE_PORT": str(port),
        }
        with (self.state / f"edge-{port}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "parley.edge"], env=env, stdout=log, stderr=log
            )

    def port_of(self, part: str) -> int:
        """The HTTP port of the edge ``part`` (``edge``, ``edge#2``) of :meth:`pids`."""
        environ = Path(f"/proc/{self.pids()[part]}/environ").read_bytes().split(b"\0")
        return int(next(v for v in environ if v.startswith(b"PARLEY_EDGE_PORT="))[17:])

    def pids(self) -> dict[str, int]:
        """The running parts of this stack, by name: ``registry``, ``edge``, ``nats``
        (``nats-1``… in a cluster); a second process of a service is e.g. ``registry#2``."""
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            args = [a.decode(errors="replace") for a in argv if a]
            if str(self.state) not in " ".join(args) and str(self.state).encode() not in environ:
                continue
            name = _part(args)
            if name is None or _zombie(entry):
                continue
            key, n = name, 2
            while key in found:
                key, n = f"{name}#{n}", n + 1
            found[key] = int(entry.name)
        return found

    def kill(self, part: str) -> Killed:
        """SIGKILL one part of the stack (``registry``, ``nats``, ``nats-2``…)."""
        before, mark = self.pids(), len(self.lines)
        os.kill(before[part], signal.SIGKILL)
        return Killed(before, mark, time.monotonic())

    def stop(self) -> int:
        """Ctrl-C; the launcher's exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill_all(self) -> None:
        """Kill whatever of the stack still runs (after a failed test)."""
        for pid in self.pids().values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()


UNLIMITED = {"PARLEY_QUOTA_MAX_AGENTS": "0"}
"""No agent quota: for a load that creates agents as fast as the stack takes them."""


@contextlib.contextmanager
def running(state: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Launcher]:
    """A launcher that is up (``env`` on top of this process's), stopped with Ctrl-C (and
    anything left killed) at the end."""
    launcher = Launcher(state, *args, env=env)
    try:
        yield launcher.up()
    finally:
        launcher.stop()
        launcher.kill_all()


def _part(args: list[str]) -> str | None:
    """``registry`` for ``python -m parley.registry``, ``nats-2`` for its nats-server."""
    if len(args) >= 3 and args[1] == "-m" and args[2].startswith("parley."):
        module = args[2].removeprefix("parley.")
        return None if module == "devstack" else module
    if args and args[0].endswith("nats-server") and "--config" in args:
        config = Path(args[args.index("--config") + 1])
        return config.parent.name  # nats, or nats-1…
    return None


def _zombie(entry: Path) -> bool:
    try:
        return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
