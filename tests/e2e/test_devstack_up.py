"""``just up`` (``python -m parley.devstack up``) on a fresh state folder: the bootstrap admin
key is made once, printed once, and kept in ``<state>/admin.key`` readable by its owner only;
the next start says where it is and does not print it. No NATS password is printed."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from parley.devstack.nats import EXTERNAL_USER, SERVICES_USER, free_port


def up(state: Path) -> str:
    """Run the launcher until it is up, stop it with Ctrl-C, and return what it printed."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parley.devstack",
            "up",
            "--state-dir",
            str(state),
            "--port",
            str(free_port()),
            "--nats-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("parley: up"):
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            raise AssertionError("the launcher exited:\n" + "".join(lines))
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        lines.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, "".join(lines)
    return "".join(lines)


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
