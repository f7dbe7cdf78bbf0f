"""deploy/k8s: every manifest is valid against the Kubernetes schemas (kubernetes-validate,
offline), the kustomizations build, and what they build runs every service the way
docs/operations.md promises: probes, requests, a disruption budget and an autoscaler each,
a three-node JetStream cluster on deploy/nats/nats-server.conf, secrets that exist."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from _kustomize import KUSTOMIZATION
from _kustomize import build
from _kustomize import load_documents
from _kustomize import pod_specs
from _natsconf import parse

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SECRETS = K8S / "secrets.example.yaml"
KUSTOMIZATIONS = sorted(path.parent for path in K8S.rglob(KUSTOMIZATION))
SERVICES = sorted(path.name for path in (ROOT / "services").iterdir() if (path / "src").is_dir())
NATS_SERVICES = [name for name in SERVICES if name != "edge"]
KUBERNETES = kubernetes_validate.utils.latest_version()


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build(K8S / "base")


@pytest.fixture(scope="module")
def secrets() -> dict[str, dict[str, Any]]:
    return _by_kind(load_documents(SECRETS), "Secret")


def test_there_is_a_base_and_an_overlay() -> None:
    assert K8S / "base" in KUSTOMIZATIONS
    assert any(path.parent.name == "overlays" for path in KUSTOMIZATIONS)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_built_object_is_valid_kubernetes(folder: Path) -> None:
    objects = build(folder)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_example_secrets_are_valid_kubernetes() -> None:
    for obj in load_documents(SECRETS):
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_every_manifest_file_is_built_or_is_the_secrets_example() -> None:
    used = {SECRETS.resolve()}
    for folder in KUSTOMIZATIONS:
        used.add((folder / KUSTOMIZATION).resolve())
        for entry in load_documents(folder / KUSTOMIZATION)[0].get("resources", []):
            used.add((folder / entry).resolve())
    manifests = {path.resolve() for path in K8S.rglob("*.yaml")}
    assert manifests - used == set(), "manifests no kustomization lists"


def test_every_service_runs_as_a_deployment_with_probes_and_requests(
    base: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(base, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"parley.{name}"]
        assert container["image"].split(":")[0] == "parley"
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(requests), name
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["port"] in ports, f"{name} {probe} probes a port it does not open"
        if name == "edge":
            assert ports["http"] == 8080
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        else:
            assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert ports["metrics"] == 9464


def test_the_edge_probes_send_a_host_the_edge_serves(base: list[dict[str, Any]]) -> None:
    config = _by_kind(base, "ConfigMap")["parley-config"]["data"]
    allowed = config["PARLEY_ALLOWED_HOSTS"].split(",")
    (edge,) = _by_kind(base, "Deployment")["edge"]["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        headers = {h["name"]: h["value"] for h in edge[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed


def test_every_service_has_a_service_a_disruption_budget_and_an_autoscaler(
    base: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(base, "Deployment")
    budgets = _by_kind(base, "PodDisruptionBudget")
    scalers = _by_kind(base, "HorizontalPodAutoscaler")
    services = _by_kind(base, "Service")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert budgets[name]["spec"]["minAvailable"] < deployment["spec"]["replicas"]
        target = scalers[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert scalers[name]["spec"]["minReplicas"] == deployment["spec"]["replicas"]
        assert services[name]["spec"]["selector"].items() <= labels.items()


def test_configmaps_and_secrets_the_pods_use_exist(
    base: list[dict[str, Any]], secrets: dict[str, dict[str, Any]]
) -> None:
    configmaps = _by_kind(base, "ConfigMap")
    for workload, spec in pod_specs(base):
        where = workload["metadata"]["name"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, where
            if "secret" in volume:
                secret = secrets[volume["secret"]["secretName"]]
                for item in volume["secret"].get("items", []):
                    assert item["key"] in secret["stringData"], where
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, where
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], where


def test_the_password_file_the_services_read_is_the_mounted_secret(
    base: list[dict[str, Any]],
) -> None:
    path = Path(_by_kind(base, "ConfigMap")["parley-config"]["data"]["PARLEY_NATS_PASSWORD_FILE"])
    for name in SERVICES:
        spec = _by_kind(base, "Deployment")[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert {"key": "parley-password", "path": path.name} in volume["secret"]["items"], name


def test_nats_is_a_three_node_jetstream_cluster_on_the_production_config(
    base: list[dict[str, Any]],
) -> None:
    nats = _by_kind(base, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    config_text = _by_kind(base, "ConfigMap")["nats-config"]["data"]["nats-server.conf"]
    assert config_text == (ROOT / "deploy/nats/nats-server.conf").read_text(), (
        "deploy/k8s/base/nats-config.yaml must hold deploy/nats/nats-server.conf as is; its"
        " first lines say how to copy it in"
    )
    config = parse(config_text)
    assert config["jetstream"]["sync_interval"] == "always"
    headless = _by_kind(base, "Service")[nats["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    pods = {f"nats-{k}.{nats['spec']['serviceName']}" for k in range(3)}
    routes = {route.split("//")[1].split(":")[0] for route in config["cluster"]["routes"]}
    assert routes == pods
    store = Path(config["jetstream"]["store_dir"])
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    data = next(m for m in container["volumeMounts"] if m["name"] == "data")
    assert store.is_relative_to(data["mountPath"])
    claim = nats["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"


def test_streams_are_made_at_r3_and_services_reach_nats(base: list[dict[str, Any]]) -> None:
    config = _by_kind(base, "ConfigMap")["parley-config"]["data"]
    assert config["PARLEY_NATS_REPLICAS"] == "3"
    host = config["PARLEY_NATS_URL"].split("//")[1].split(":")[0]
    service = _by_kind(base, "Service")[host]
    assert 4222 in [port["port"] for port in service["spec"]["ports"]]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "nats"}


def test_nats_keeps_a_quorum_through_disruptions(base: list[dict[str, Any]]) -> None:
    budget = _by_kind(base, "PodDisruptionBudget")["nats"]
    assert budget["spec"]["maxUnavailable"] == 1


def test_no_secret_value_is_in_the_built_manifests(base: list[dict[str, Any]]) -> None:
    assert not _by_kind(base, "Secret"), "secrets belong in secrets.example.yaml, empty"
    for secret in load_documents(SECRETS):
        assert set(secret["stringData"].values()) == {""}
