"""``just up`` (``python -m parley.devstack up``) on a fresh state folder: the bootstrap admin
key is made once, printed once, and kept in ``<state>/admin.key`` readable by its owner only;
the next start says where it is and does not print it. No NATS password is printed."""

import os
import stat
from pathlib import Path

from devstack_launcher import running

from parley.devstack.nats import EXTERNAL_USER
from parley.devstack.nats import SERVICES_USER


def up(state: Path) -> str:
    """Run the launcher until it is up, stop it with Ctrl-C, and return what it printed."""
    with running(state) as launcher:
        assert launcher.stop() == 0, launcher.output
    return launcher.output


def test_the_first_up_prints_the_admin_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = up(state)
    key_file = state / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert secret.startswith("pk_")
    assert f"bootstrap admin key (shown once; also in {key_file}" in first
    assert first.count(secret) == 1, first

    second = up(state)
    assert secret not in second
    assert f"the bootstrap admin key is in {key_file}" in second
    assert key_file.read_text().strip() == secret  # the same key, not a new one

    for user in (SERVICES_USER, EXTERNAL_USER):
        password_file = state / "nats" / f"{user}.password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert password not in first and password not in second
        logs = [p.read_text(errors="replace") for p in state.rglob("*.log")]
        assert not any(password in log for log in logs)
    assert os.stat(state / "nats" / "nats-server.conf").st_mode & 0o077 == 0
