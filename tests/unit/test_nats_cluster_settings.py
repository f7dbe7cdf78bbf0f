"""Settings for a NATS cluster: several server URLs, and the replicas of what Parley creates;
the dev stack's restart backoff."""

from pathlib import Path

import pytest

from parley.devstack.supervise import Backoff
from parley.devstack.supervise import describe_exit
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env

CLUSTER = "nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://127.0.0.1:4224"


def test_a_comma_separated_nats_url_gives_every_server_each_with_the_credentials(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    env = {
        "PARLEY_NATS_URL": CLUSTER,
        "PARLEY_NATS_USER": "parley",
        "PARLEY_NATS_PASSWORD_FILE": str(secret),
    }
    settings = from_env(ServiceSettings, env)
    servers = [f"nats://127.0.0.1:{port}" for port in (4222, 4223, 4224)]
    assert settings.nats_servers() == servers
    assert settings.nats_connect_options()["servers"] == servers
    assert settings.nats_url_with_credentials().split(",") == [
        f"nats://parley:pw@127.0.0.1:{port}" for port in (4222, 4223, 4224)
    ]


def test_replicas_default_to_one_and_take_one_to_five() -> None:
    assert from_env(ServiceSettings, {}).nats_replicas == 1
    assert from_env(ServiceSettings, {"PARLEY_NATS_REPLICAS": "3"}).nats_replicas == 3
    for bad in ("0", "6", "three"):
        with pytest.raises(SettingsError, match="nats_replicas"):
            from_env(ServiceSettings, {"PARLEY_NATS_REPLICAS": bad})


def test_a_nats_url_naming_no_server_is_refused() -> None:
    with pytest.raises(SettingsError, match="PARLEY_NATS_URL"):
        from_env(ServiceSettings, {"PARLEY_NATS_URL": " , "})


def test_restarts_back_off_to_the_cap_and_start_over_after_a_stable_run() -> None:
    backoff = Backoff(first=0.5, cap=10.0, stable=30.0)
    assert [backoff.delay(ran_for=1.0) for _ in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff.delay(ran_for=30.0) == 0.5
    assert backoff.delay(ran_for=1.0) == 1


def test_an_exit_is_described_by_its_code_or_its_signal() -> None:
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "killed by SIGKILL"
