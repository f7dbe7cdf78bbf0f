"""The whole stack as processes: nats-server, every service, then the edge."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import nats

from parley.devstack.nats import SERVICES_USER, NatsServer, free_port
from parley.identity.bootstrap import ADMIN_KEY_FILE, bootstrap_admin_key_at

__all__ = ["SERVICES", "Stack", "StackError"]

SERVICES: tuple[str, ...] = ("registry", "runtime", "messaging", "tasks")
"""Services started before the edge, each as ``python -m parley.<name>``."""


class StackError(RuntimeError):
    """A part of the stack did not start or died."""


class Stack:
    """nats-server with JetStream, each service as its own process, and the edge.

    State (the JetStream store, the NATS passwords, the bootstrap admin key) lives under
    ``state_dir``, so a restart keeps every agent. Every process connects to NATS as the
    services' user (``PARLEY_NATS_USER``, ``PARLEY_NATS_PASSWORD_FILE``).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        edge_port: int | None = None,
        nats_port: int | None = None,
        log_to_files: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.edge_port = edge_port or free_port()
        self.nats = NatsServer(state_dir / "nats", nats_port)
        self.log_to_files = log_to_files
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.admin_key: str | None = None
        """The bootstrap admin key when this start created it (to show once), else None."""

    @property
    def edge_url(self) -> str:
        """Base URL of the edge."""
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def nats_url(self) -> str:
        """Client URL of the stack's nats-server, with the services' credentials (to connect;
        show :attr:`NatsServer.address` instead)."""
        return self.nats.url

    @property
    def admin_key_file(self) -> Path:
        """Where the bootstrap admin key is (mode 0600)."""
        return self.state_dir / ADMIN_KEY_FILE

    def env(self) -> dict[str, str]:
        """Environment every process of the stack gets."""
        return {
            **os.environ,
            "PARLEY_NATS_URL": self.nats.address,
            "PARLEY_NATS_USER": SERVICES_USER,
            "PARLEY_NATS_PASSWORD_FILE": str(self.nats.password_file(SERVICES_USER)),
            "PARLEY_EDGE_PORT": str(self.edge_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, timeout: float = 30.0) -> "Stack":
        """Start nats-server, then the services, then the edge; wait until all are ready."""
        deadline = time.monotonic() + timeout
        self.nats.start()
        try:
            for name in SERVICES:
                self.start_process(name)
            asyncio.run(self._wait_for_services(deadline))
            self.admin_key = self._bootstrap_admin_key()
            self.start_process("edge")
            self._wait_for_edge(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _bootstrap_admin_key(self) -> str | None:
        """The first admin key of a fresh store (None when the store had one already)."""
        try:
            return asyncio.run(bootstrap_admin_key_at(self.nats_url, self.state_dir))
        except Exception as exc:  # its message could quote the URL, with the password
            raise StackError(
                f"could not make the bootstrap admin key ({type(exc).__name__})"
            ) from None

    def start_process(
        self, name: str, key: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m parley.<name>`` as a process of this stack.

        Args:
            name: The service (``runtime``, ``edge``, …).
            key: The process's name in :attr:`processes` and its log file (default
                ``name``); a second ``runtime`` is e.g. ``key="runtime-2"``.
            env: Variables added for this process only (e.g. ``PARLEY_WORKER``).
        """
        key = key or name
        out: IO[bytes] | None = None
        if self.log_to_files:
            (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
            out = (self.state_dir / "logs" / f"{key}.log").open("ab")
            self._logs.append(out)
        process = subprocess.Popen(
            [sys.executable, "-m", f"parley.{name}"],
            env={**self.env(), **(env or {})},
            stdout=out,
            stderr=out,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops us in order
        )
        self.processes[key] = process
        return process

    def stop_process(self, key: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop one process with ``sig`` (SIGTERM, then SIGKILL after ``timeout``; or SIGKILL)."""
        process = self.processes.pop(key, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the edge, then the services, then nats-server."""
        for name in ["edge", *reversed(SERVICES)]:
            self.stop_process(name)
        for key in list(self.processes):  # replicas a test started
            self.stop_process(key)
        self.nats.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def dead(self) -> list[str]:
        """Names of processes that have exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def _check_alive(self) -> None:
        if dead := self.dead():
            raise StackError(f"{', '.join(dead)} exited; see {self.state_dir / 'logs'}")

    async def _wait_for_services(self, deadline: float) -> None:
        nc = await nats.connect(self.nats_url)
        try:
            pending = set(SERVICES)
            while pending:
                self._check_alive()
                if time.monotonic() > deadline:
                    raise StackError(f"services not healthy in time: {sorted(pending)}")
                for name in list(pending):
                    try:
                        await nc.request(f"parley.health.{name}", b"", timeout=0.5)
                        pending.discard(name)
                    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                        await asyncio.sleep(0.05)
        finally:
            await nc.close()

    def _wait_for_edge(self, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.edge_url + "/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"edge not ready at {self.edge_url}/ready in time")
            time.sleep(0.05)
