"""The whole stack as processes: nats-server (one, or a three-node cluster), every service,
then the edge."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import nats

from parley.devstack.nats import SERVICES_USER
from parley.devstack.nats import NatsServer
from parley.devstack.nats import cluster
from parley.devstack.nats import free_port
from parley.devstack.nats import shared_procs
from parley.eventstore.factory import open_store
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key_at
from parley.kit.metrics import DEFAULT_PORTS

__all__ = ["CLUSTER_SIZE", "SERVICES", "Stack", "StackError"]

SERVICES: tuple[str, ...] = ("registry", "runtime", "messaging", "tasks", "deployment")
"""Services started before the edge, each as ``python -m parley.<name>``."""
CLUSTER_SIZE = 3
"""NATS nodes, and the replicas of every stream, in cluster mode."""
_INSTANCES = 2
"""Processes of each service, and edges, in cluster mode."""


class StackError(RuntimeError):
    """A part of the stack did not start or died."""


class Stack:
    """nats-server with JetStream, each service as its own process, and the edge.

    State (the JetStream store, the NATS passwords, the bootstrap admin key) lives under
    ``state_dir``, so a restart keeps every agent. Every process connects to NATS as the
    services' user (``PARLEY_NATS_USER``, ``PARLEY_NATS_PASSWORD_FILE``).

    With ``combined`` every service and the edge run in one process (``python -m
    parley.combined``, key ``combined``) instead of one each.

    With ``cluster`` the stack runs three NATS nodes (every stream, KV bucket and object
    store at three replicas, ``PARLEY_NATS_REPLICAS=3``), two processes of every service
    (``registry`` and ``registry-2``, …), each given every node's URL, and two edges: on
    ``edge_port`` and ``edge_port + 1``.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        edge_port: int | None = None,
        nats_port: int | None = None,
        log_to_files: bool = True,
        env: dict[str, str] | None = None,
        cluster_mode: bool = False,
        combined: bool = False,
    ) -> None:
        if cluster_mode and combined:
            raise ValueError("a stack is either a cluster or combined")
        self.state_dir = state_dir
        self.cluster = cluster_mode
        self.combined = combined
        self.edge_port = edge_port or free_port()
        self.edge_ports = [self.edge_port + i for i in range(_INSTANCES if cluster_mode else 1)]
        self.nats_nodes = (
            cluster(state_dir / "nats", nats_port, CLUSTER_SIZE, procs=shared_procs())
            if cluster_mode
            else [NatsServer(state_dir / "nats", nats_port, procs=shared_procs())]
        )
        self.nats = self.nats_nodes[0]
        self.log_to_files = log_to_files
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._specs: dict[str, tuple[str, dict[str, str]]] = {}
        self._logs: list[IO[bytes]] = []
        self.admin_key: str | None = None
        """The bootstrap admin key when this start created it (to show once), else None."""

    @property
    def edge_url(self) -> str:
        """Base URL of the (first) edge."""
        return self.edge_urls[0]

    @property
    def edge_urls(self) -> list[str]:
        """Base URL of every edge."""
        return [f"http://127.0.0.1:{port}" for port in self.edge_ports]

    @property
    def nats_url(self) -> str:
        """Client URL of the stack's (first) nats-server, with the services' credentials (to
        connect; show :attr:`nats_address` instead)."""
        return self.nats.url

    @property
    def nats_urls(self) -> list[str]:
        """Client URL of every NATS node, with the services' credentials."""
        return [node.url for node in self.nats_nodes]

    @property
    def nats_address(self) -> str:
        """The NATS URLs as the services get them (comma-separated, no credentials)."""
        return ",".join(node.address for node in self.nats_nodes)

    @property
    def admin_key_file(self) -> Path:
        """Where the bootstrap admin key is (mode 0600)."""
        return self.state_dir / ADMIN_KEY_FILE

    def env(self) -> dict[str, str]:
        """Environment every process of the stack gets."""
        return {
            **os.environ,
            "PARLEY_NATS_URL": self.nats_address,
            "PARLEY_NATS_USER": SERVICES_USER,
            "PARLEY_NATS_PASSWORD_FILE": str(self.nats.password_file(SERVICES_USER)),
            "PARLEY_NATS_REPLICAS": str(len(self.nats_nodes)),
            "PARLEY_EDGE_PORT": str(self.edge_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, timeout: float = 60.0) -> "Stack":
        """Start nats-server, then every service and the edge; wait until all are ready."""
        deadline = time.monotonic() + timeout * (2 if self.cluster else 1)
        try:
            for node in self.nats_nodes:
                node.start(timeout)
            if self.cluster:
                asyncio.run(self._wait_for_jetstream(deadline))
            if self.combined:
                self.admin_key = self._bootstrap_admin_key()
                self.start_process("combined")
                asyncio.run(self._wait_for_services(deadline))
                self._wait_for_edge(self.edge_url, deadline)
                return self
            # Every process at once: each spends its first seconds importing, and the edge
            # waits for no service to start (it serves 503 for what is not up yet).
            self.admin_key = self._bootstrap_admin_key()
            for name in SERVICES:
                for copy, key in enumerate(self._keys(name)):
                    self.start_process(name, key, _metrics_port(name, copy))
            for key, port in zip(self._keys("edge"), self.edge_ports, strict=True):
                self.start_process("edge", key, {"PARLEY_EDGE_PORT": str(port)})
            asyncio.run(self._wait_for_services(deadline))
            for url in self.edge_urls:
                self._wait_for_edge(url, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _keys(self, name: str) -> list[str]:
        """The process keys of service ``name``: ``name``, then ``name-2`` in cluster mode."""
        return [name] + [f"{name}-{i}" for i in range(2, _INSTANCES + 1) if self.cluster]

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
        self._specs[key] = (name, env or {})
        return process

    def stop_process(self, key: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop one process with ``sig`` (SIGTERM, then SIGKILL after ``timeout``; or SIGKILL)."""
        process = self.processes.pop(key, None)
        if process is not None:
            _terminate([process], sig, timeout)

    def stop(self, grace: float = 15.0) -> None:
        """Stop the edges, then the services, then nats-server: each group gets SIGTERM and
        ``grace`` seconds to finish before SIGKILL."""
        self._stop_processes(grace)
        _terminate([node.process for node in self.nats_nodes if node.process], grace=grace)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def _stop_processes(self, grace: float) -> None:
        edges = [key for key, (name, _) in self._specs.items() if name == "edge"]
        for group in (edges, list(self.processes)):
            _terminate([p for key in group if (p := self.processes.pop(key, None))], grace=grace)

    def exited(self) -> dict[str, int]:
        """Exit code of each part of the stack (NATS node or process) that has exited."""
        parts = {node.name: node.process for node in self.nats_nodes if node.process}
        parts.update(self.processes)
        return {key: code for key, p in parts.items() if (code := p.poll()) is not None}

    def restart(self, key: str) -> int:
        """Start the exited part ``key`` again (as :meth:`exited` names it); return its pid.

        A NATS node restarts on its port with its store, so acknowledged data is kept (it
        is waited for, up to 10 s, so that clients find it)."""
        for node in self.nats_nodes:
            if node.name == key:
                with contextlib.suppress(TimeoutError):  # exited again: the next check sees it
                    node.start()
                assert node.process is not None
                return node.process.pid
        name, env = self._specs[key]
        return self.start_process(name, key, env).pid

    def dead(self) -> list[str]:
        """Names of processes that have exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def _check_alive(self) -> None:
        if dead := self.dead():
            raise StackError(f"{', '.join(dead)} exited; see {self.state_dir / 'logs'}")

    async def _wait_for_jetstream(self, deadline: float) -> None:
        """Wait until the cluster's JetStream has a meta leader (it answers account info)."""
        nc = await nats.connect(servers=self.nats_urls)
        try:
            while True:
                try:
                    reply = await nc.request("$JS.API.INFO", b"", timeout=1)
                    if "error" not in json.loads(reply.data):
                        break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise StackError("the NATS cluster's JetStream was not ready in time")
                await asyncio.sleep(0.1)
            # the events stream, made once here at R3 and waited for (it elects a leader),
            # rather than by eight service processes racing to make it
            store = await open_store(backend="jetstream", nc=nc, replicas=len(self.nats_nodes))
            await store.close()
        finally:
            await nc.close()

    async def _wait_for_services(self, deadline: float) -> None:
        nc = await nats.connect(servers=self.nats_urls)
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

    def _wait_for_edge(self, url: str, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(url + "/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"edge not ready at {url}/ready in time")
            time.sleep(0.05)


def _terminate(
    processes: Iterable[subprocess.Popen[bytes]], sig: int = signal.SIGTERM, grace: float = 15.0
) -> None:
    """Send ``sig`` to every running process, wait up to ``grace`` seconds for them all,
    then SIGKILL the ones still running."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(sig)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _metrics_port(service: str, copy: int) -> dict[str, str]:
    """The metrics port of the ``copy``-th process of ``service``: its default for the first,
    ten above it for each further one (cluster mode), so that every process is scraped."""
    if copy == 0:
        return {}
    return {"PARLEY_METRICS_PORT": str(DEFAULT_PORTS.get(service, 9464) + 10 * copy)}
