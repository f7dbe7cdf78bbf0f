"""Create the first admin key of a stack started without the dev launcher (compose, k8s).

    python deploy/bootstrap_admin_key.py <folder>

Connects like the services do (``PARLEY_NATS_URL``, ``PARLEY_NATS_USER``,
``PARLEY_NATS_PASSWORD_FILE``, ``PARLEY_EVENTSTORE``, ``PARLEY_KURRENTDB_URL``) and runs the
dev launcher's bootstrap (:func:`parley.identity.bootstrap.bootstrap_admin_key`): once per
store it creates one admin key for every namespace, writes it to ``<folder>/admin.key``
(mode 0600) and prints it that once. Later runs print only where it is. Exit code 1 with the
reason on stderr when the store cannot be reached, refuses the credentials, or a setting is
wrong; it tries for about ten seconds, not forever.
"""

import asyncio
import sys
from pathlib import Path

import nats
from nats.aio.client import Client

from parley.eventstore.factory import open_store
from parley.eventstore.port import EventStoreError
from parley.identity.bootstrap import ADMIN_KEY_FILE
from parley.identity.bootstrap import bootstrap_admin_key
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env


async def _quiet(_: Exception) -> None:
    """nats-py's default error callback logs a traceback; the failure is reported once, below."""


async def _bootstrap(settings: ServiceSettings, folder: Path) -> str | None:
    nc: Client | None = None
    if settings.eventstore.strip().lower() == "jetstream":
        nc = await nats.connect(
            **settings.nats_connect_options(),
            name="parley-bootstrap",
            connect_timeout=5,
            allow_reconnect=False,
            max_reconnect_attempts=5,  # NATS may still be starting: 5 tries, 2 s apart
            error_cb=_quiet,
        )
    try:
        store = await open_store(
            backend=settings.eventstore, kurrentdb_url=settings.kurrentdb_url, nc=nc
        )
        try:
            return await bootstrap_admin_key(store, folder)
        finally:
            await store.close()
    finally:
        if nc is not None:
            await nc.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python deploy/bootstrap_admin_key.py <folder>", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    try:
        key = asyncio.run(_bootstrap(from_env(ServiceSettings), folder))
    except (SettingsError, EventStoreError, nats.errors.Error, OSError, TimeoutError) as exc:
        print(f"parley: cannot make the admin key: {exc}", file=sys.stderr)
        return 1
    where = folder / ADMIN_KEY_FILE
    if key is None:
        print(f"parley: the admin key was made earlier; it is in {where} if kept", file=sys.stderr)
        return 0
    print(f"parley: bootstrap admin key (shown once; also in {where}):\n\n    {key}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
