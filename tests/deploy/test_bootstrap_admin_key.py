"""deploy/bootstrap_admin_key.py, the first admin key of a compose or Kubernetes stack: made
once per store with the services' own settings, shown once, kept in a 0600 file, and a
clear refusal (no traceback) when NATS refuses the credentials."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.devstack.nats import SERVICES_USER
from parley.devstack.nats import NatsServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "bootstrap_admin_key.py"


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


def _run(server: NatsServer, folder: Path, password_file: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PARLEY_NATS_URL": server.address,
        "PARLEY_NATS_USER": SERVICES_USER,
        "PARLEY_NATS_PASSWORD_FILE": str(password_file),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_key_is_made_once_shown_once_and_kept_private(nats: NatsServer, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    first = _run(nats, folder, nats.password_file(SERVICES_USER))
    assert first.returncode == 0, first.stderr
    kept = folder / "admin.key"
    key = kept.read_text().strip()
    assert key in first.stdout
    assert kept.stat().st_mode & 0o777 == 0o600

    again = _run(nats, folder, nats.password_file(SERVICES_USER))
    assert again.returncode == 0, again.stderr
    assert key not in again.stdout + again.stderr
    assert "made earlier" in again.stderr
    assert kept.read_text().strip() == key


def test_refused_credentials_are_a_clear_error(nats: NatsServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("pwnotit\n")
    refused = _run(nats, tmp_path / "state", wrong)
    assert refused.returncode == 1
    assert refused.stderr.startswith("parley: ")
    assert "Traceback" not in refused.stderr
    assert "pwnotit" not in refused.stderr
    assert not (tmp_path / "state" / "admin.key").exists()
