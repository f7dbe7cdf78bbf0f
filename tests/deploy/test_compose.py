"""docker-compose.yml runs what docs/operations.md says: every service from the one image, a
three-node NATS cluster with JetStream (routes between the three, `sync_interval: always`,
streams at R3), Jaeger receiving every process's traces, Prometheus scraping every process,
KurrentDB only under `--profile kurrentdb`, and no secret written into the file.

There is no Docker engine here: the file is read, not run."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from _natsconf import parse
from _natsconf import values_of

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(path.name for path in (ROOT / "services").iterdir() if (path / "src").is_dir())
METRICS_PORT = "9464"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document["services"]


def _nats_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: spec for name, spec in compose.items() if spec.get("image", "").startswith("nats:")
    }


def _bind_mounts(spec: dict[str, Any]) -> dict[str, Path]:
    """Container path → host file of the service's bind mounts (`./…:/…`)."""
    mounts = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def _node_config(spec: dict[str, Any]) -> dict[str, Any]:
    command = spec["command"]
    path = _bind_mounts(spec)[command[command.index("--config") + 1]]
    return parse(path.read_text())


def _host(url: str) -> str:
    return re.sub(r"^[a-z+-]+://(?:[^@/]*@)?", "", url).split("/")[0].split(":")[0]


def test_every_service_runs_from_the_one_image(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        spec = compose[name]
        assert spec["command"] == ["python", "-m", f"parley.{name}"]
        assert spec["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
    assert (ROOT / "deploy" / "Dockerfile").is_file()


def test_every_service_connects_as_the_parley_user_with_a_password_file(
    compose: dict[str, Any],
) -> None:
    nodes = _nats_nodes(compose)
    aliases = {alias for spec in nodes.values() for alias in spec["networks"]["default"]["aliases"]}
    for name in SERVICES:
        env = compose[name]["environment"]
        assert _host(env["PARLEY_NATS_URL"]) in aliases | set(nodes)
        assert env["PARLEY_NATS_USER"] == "parley"
        secret = Path(env["PARLEY_NATS_PASSWORD_FILE"])
        assert secret.parent == Path("/run/secrets")
        assert secret.name in compose[name]["secrets"]


def test_nats_is_three_clustered_jetstream_nodes_that_fsync_every_write(
    compose: dict[str, Any],
) -> None:
    nodes = _nats_nodes(compose)
    assert len(nodes) == 3
    names_of = {
        node: {node, spec.get("hostname"), *spec["networks"]["default"]["aliases"]}
        for node, spec in nodes.items()
    }
    server_names = set()
    for node, spec in nodes.items():
        config = _node_config(spec)
        assert config["jetstream"]["sync_interval"] == "always"
        store = Path(config["jetstream"]["store_dir"])
        named_volumes = [v.split(":") for v in spec["volumes"] if not v.startswith(".")]
        assert any(store.is_relative_to(target) for _, target, *_ in named_volumes), node
        routes = {_host(route) for route in config["cluster"]["routes"]}
        reached = {other for other, names in names_of.items() if routes & names}
        assert reached == set(nodes), f"{node}'s routes reach {reached}"
        assert config["server_name"] == "$SERVER_NAME"
        server_names.add(spec["environment"]["SERVER_NAME"])
    assert len(server_names) == 3


def test_streams_are_made_at_r3(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        assert compose[name]["environment"]["PARLEY_NATS_REPLICAS"] == "3"


def test_nats_gets_its_users_passwords_from_the_environment(compose: dict[str, Any]) -> None:
    for node, spec in _nats_nodes(compose).items():
        passwords = values_of(_node_config(spec), "password")
        assert passwords
        for password in passwords:
            variable = password.removeprefix("$")
            assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]*\}}", spec["environment"][variable]), (
                f"{node}: {variable} must be required from the environment, never written here"
            )


def test_no_secret_is_written_into_the_file(compose: dict[str, Any]) -> None:
    secretive = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN", re.I)
    for name, spec in compose.items():
        for variable, value in (spec.get("environment") or {}).items():
            if secretive.search(variable) and not variable.endswith("_FILE"):
                assert str(value).startswith("${"), f"{name}: {variable} is a literal"


def test_every_process_sends_traces_to_jaeger(compose: dict[str, Any]) -> None:
    jaeger = compose["jaeger"]
    assert any(port.endswith(":4318") for port in jaeger["ports"])
    for name in SERVICES:
        endpoint = compose[name]["environment"]["PARLEY_OTLP_ENDPOINT"]
        assert (_host(endpoint), endpoint.rsplit(":", 1)[1]) == ("jaeger", "4318")


def test_prometheus_scrapes_every_process(compose: dict[str, Any]) -> None:
    config_path = _bind_mounts(compose["prometheus"])["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text())
    targets = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", []):
            targets |= {tuple(target.split(":")) for target in static["targets"]}
        for dns in job.get("dns_sd_configs", []):
            targets |= {(name, str(dns["port"])) for name in dns["names"]}
    for name in SERVICES:
        env = compose[name]["environment"]
        port = env["PARLEY_EDGE_PORT"] if name == "edge" else env["PARLEY_METRICS_PORT"]
        assert (name, port) in targets, f"prometheus does not scrape {name}:{port}"
        if name != "edge":
            assert port == METRICS_PORT


def test_prometheus_scrapes_the_edge_by_a_host_the_edge_serves(compose: dict[str, Any]) -> None:
    allowed = compose["edge"]["environment"]["PARLEY_ALLOWED_HOSTS"]
    default = re.fullmatch(r"\$\{PARLEY_ALLOWED_HOSTS:-(.*)\}", allowed)
    assert default is not None
    assert f"edge:{compose['edge']['environment']['PARLEY_EDGE_PORT']}" in default[1].split(",")


def test_kurrentdb_runs_only_under_its_profile(compose: dict[str, Any]) -> None:
    assert compose["kurrentdb"]["profiles"] == ["kurrentdb"]
    for name in SERVICES:
        spec = compose[name]
        assert "profiles" not in spec
        assert spec["depends_on"]["kurrentdb"]["required"] is False
        assert _host(spec["environment"]["PARLEY_KURRENTDB_URL"]) == "kurrentdb"
        assert spec["environment"]["PARLEY_EVENTSTORE"] == "${PARLEY_EVENTSTORE:-jetstream}"


def test_every_file_the_stack_mounts_exists(compose: dict[str, Any]) -> None:
    for name, spec in compose.items():
        for target, source in _bind_mounts(spec).items():
            assert source.is_file(), f"{name} mounts {source} at {target}"
