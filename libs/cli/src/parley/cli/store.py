"""Which event store a command opens: the ``PARLEY_*`` settings the services read, with
command-line overrides, and the dev stack's own credentials when it runs here."""

from pathlib import Path

from parley.devstack.nats import SERVICES_USER
from parley.eventstore.factory import open_store
from parley.eventstore.port import EventStore
from parley.kit.settings import ServiceSettings
from parley.kit.settings import from_env

__all__ = ["StoreOptions", "open_configured_store"]


class StoreOptions:
    """The command line's say over the store (None: the settings decide)."""

    def __init__(
        self, backend: str | None, nats_url: str | None, kurrentdb_url: str | None, state_dir: Path
    ) -> None:
        self.backend, self.nats_url, self.kurrentdb_url = backend, nats_url, kurrentdb_url
        self.state_dir = state_dir


def _settings(options: StoreOptions) -> ServiceSettings:
    settings = from_env(ServiceSettings)
    changes: dict[str, str] = {}
    if options.nats_url is not None:
        changes["nats_url"] = options.nats_url
    dev_password = options.state_dir / "nats" / f"{SERVICES_USER}.password"
    if settings.nats_user is None and dev_password.exists():
        changes.update(nats_user=SERVICES_USER, nats_password_file=str(dev_password))
    if options.backend is not None:
        changes["eventstore"] = options.backend
    if options.kurrentdb_url is not None:
        changes["kurrentdb_url"] = options.kurrentdb_url
    if not changes:
        return settings
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    return ServiceSettings(**{**fields, **changes})


async def open_configured_store(options: StoreOptions) -> EventStore:
    """The store the settings and ``options`` name."""
    settings = _settings(options)
    return await open_store(
        backend=settings.eventstore,
        nats_url=settings.nats_url_with_credentials(),
        kurrentdb_url=settings.kurrentdb_url,
    )
