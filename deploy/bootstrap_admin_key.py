"""Create the first admin key of a stack started without the dev launcher (compose, k8s).

    python deploy/bootstrap_admin_key.py <folder>

Connects like the services do (``PARLEY_NATS_URL``, ``PARLEY_NATS_USER``,
``PARLEY_NATS_PASSWORD_FILE``, ``PARLEY_EVENTSTORE``, ``PARLEY_KURRENTDB_URL``) and runs the
dev launcher's bootstrap (:mod:`parley.identity.bootstrap`): once per store it creates one
admin key for every namespace, writes it to ``<folder>/admin.key`` (mode 0600) and prints it
that once. Later runs print only where it is. Exit code 1 with the reason on stderr when the
store cannot be reached or a setting is wrong.
"""

import asyncio
import sys
from pathlib import Path

from parley.eventstore.port import EventStoreError
from parley.identity.bootstrap import ADMIN_KEY_FILE, bootstrap_admin_key_at
from parley.kit.settings import ServiceSettings, SettingsError, from_env


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python deploy/bootstrap_admin_key.py <folder>", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    try:
        settings = from_env(ServiceSettings)
        key = asyncio.run(
            bootstrap_admin_key_at(
                settings.nats_url_with_credentials(),
                folder,
                backend=settings.eventstore,
                kurrentdb_url=settings.kurrentdb_url,
            )
        )
    except (SettingsError, EventStoreError, OSError) as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    where = folder / ADMIN_KEY_FILE
    if key is None:
        print(f"parley: the admin key was made earlier; it is in {where} if kept", file=sys.stderr)
        return 0
    print(f"parley: bootstrap admin key (shown once; also in {where}):\n\n    {key}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
