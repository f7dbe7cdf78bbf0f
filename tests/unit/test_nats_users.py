"""NATS users: the dev stack's server, ``deploy/nats`` and the services' settings agree."""

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import nats
import pytest

from parley.devstack.nats import EXTERNAL_USER
from parley.devstack.nats import SERVICES_USER
from parley.devstack.nats import NatsServer
from parley.devstack.nats import nats_server_binary
from parley.devstack.nats import users_config
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env

DEPLOY = Path(__file__).parents[2] / "deploy" / "nats" / "nats-server.conf"


def test_deploy_config_has_the_dev_stacks_users_with_passwords_from_the_environment() -> None:
    text = DEPLOY.read_text()
    assert users_config("$PARLEY_NATS_PASSWORD", "$PARLEY_NATS_EXTERNAL_PASSWORD") in text
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(DEPLOY)],
        env={
            **os.environ,
            "SERVER_NAME": "n0",
            "PARLEY_NATS_PASSWORD": "pw0123abcdef",
            "PARLEY_NATS_EXTERNAL_PASSWORD": "pw4567abcdef",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout


async def test_passwords_are_made_once_readable_by_their_owner_only_and_never_logged(
    tmp_path: Path,
) -> None:
    server = await asyncio.to_thread(NatsServer(tmp_path / "nats").start)
    try:
        passwords = {user: server.password(user) for user in (SERVICES_USER, EXTERNAL_USER)}
        for user in passwords:
            assert stat.S_IMODE(server.password_file(user).stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "nats" / "nats-server.conf").stat().st_mode) == 0o600
        assert len(set(passwords.values())) == 2 and all(len(p) >= 32 for p in passwords.values())
        nc = await nats.connect(server.url)  # the services' user
        await nc.close()
        assert SERVICES_USER in server.url and server.password(SERVICES_USER) not in server.address
    finally:
        await asyncio.to_thread(server.stop)
    again = await asyncio.to_thread(NatsServer(tmp_path / "nats").start)  # a restart
    try:
        assert {user: again.password(user) for user in passwords} == passwords
        nc = await nats.connect(again.url)
        await nc.close()
    finally:
        await asyncio.to_thread(again.stop)
    log = (tmp_path / "nats" / "nats-server.log").read_text()
    assert not any(password in log for password in passwords.values())


def test_settings_read_the_nats_password_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "parley.password"
    secret.write_text("s3cret/pass word\n")
    settings = from_env(
        ServiceSettings,
        {
            "PARLEY_NATS_URL": "nats://127.0.0.1:4333",
            "PARLEY_NATS_USER": "parley",
            "PARLEY_NATS_PASSWORD_FILE": str(secret),
        },
    )
    assert settings.nats_connect_options() == {
        "servers": ["nats://127.0.0.1:4333"],
        "user": "parley",
        "password": "s3cret/pass word",
    }
    assert (
        settings.nats_url_with_credentials() == "nats://parley:s3cret%2Fpass%20word@127.0.0.1:4333"
    )
    assert "s3cret" not in repr(settings)
    plain = ServiceSettings()
    assert plain.nats_connect_options() == {"servers": ["nats://127.0.0.1:4222"]}
    assert plain.nats_url_with_credentials() == plain.nats_url


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"PARLEY_NATS_USER": "parley"}, "together"),
        ({"PARLEY_NATS_PASSWORD_FILE": "/nonexistent"}, "together"),
        ({"PARLEY_NATS_USER": "parley", "PARLEY_NATS_PASSWORD_FILE": "/nonexistent"}, "read"),
        ({"PARLEY_NATS_USER": "parley", "PARLEY_NATS_PASSWORD_FILE": "EMPTY"}, "empty"),
    ],
)
def test_settings_refuse_an_incomplete_nats_login(
    tmp_path: Path, env: dict[str, str], complaint: str
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    env = {k: (str(empty) if v == "EMPTY" else v) for k, v in env.items()}
    with pytest.raises(SettingsError, match=complaint):
        from_env(ServiceSettings, env)
