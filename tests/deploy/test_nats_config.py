"""The NATS server configs of deploy/ are ones nats-server itself accepts (`nats-server -t`,
the binary the dev stack runs), and the Kubernetes NATS pods refuse to start without
passwords rather than let anyone in as a user with an empty one."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from parley.devstack.nats import nats_server_binary

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "deploy" / "nats").rglob("*.conf"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nats_server_accepts_the_config(config: Path) -> None:
    variables = set(re.findall(r"\$([A-Z_][A-Z0-9_]*)", config.read_text()))
    env = {**os.environ, **{name: f"pw{name.lower()}" for name in variables}}
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _nats_command() -> list[str]:
    objects = yaml.safe_load_all((ROOT / "deploy/k8s/base/nats.yaml").read_text())
    (nats,) = [obj for obj in objects if obj["kind"] == "StatefulSet"]
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    command: list[str] = container["command"]
    return command


@pytest.mark.parametrize("missing", ["PARLEY_NATS_PASSWORD", "PARLEY_NATS_EXTERNAL_PASSWORD"])
def test_the_kubernetes_nats_pods_refuse_to_start_without_a_password(missing: str) -> None:
    env = {"PATH": os.environ["PATH"], "PARLEY_NATS_PASSWORD": "pwa"}
    env["PARLEY_NATS_EXTERNAL_PASSWORD"] = "pwb"
    env[missing] = ""
    started = subprocess.run(_nats_command(), env=env, capture_output=True, text=True, timeout=30)
    assert started.returncode == 1
    assert "must be set" in started.stderr
