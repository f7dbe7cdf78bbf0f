"""The runtime's settings, from ``PARLEY_*`` environment variables, checked at start-up."""

import os
import socket
from collections.abc import Mapping
from typing import Annotated

import msgspec

from parley.contracts.models import load_catalogue
from parley.contracts.models_file import CatalogueError
from parley.kit.settings import ServiceSettings
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env
from parley.llm import ProviderSettings
from parley.llm.factory import PROVIDERS

__all__ = ["ProviderEndpoint", "RuntimeSettings", "load_settings"]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ProviderEndpoint(msgspec.Struct, kw_only=True, frozen=True):
    """How this process reaches one provider (`PARLEY_<PROVIDER>_<FIELD>`)."""

    base_url: str | None = None
    """Endpoint override (`PARLEY_<PROVIDER>_BASE_URL`)."""
    connect_timeout: float = 5.0
    """Seconds to connect (`PARLEY_<PROVIDER>_CONNECT_TIMEOUT`)."""
    idle_timeout: float = 60.0
    """Seconds without a byte before a read fails (`PARLEY_<PROVIDER>_IDLE_TIMEOUT`)."""
    max_retries: int = 2
    """Retries before the first delta (`PARLEY_<PROVIDER>_MAX_RETRIES`)."""
    embedding_model: str | None = None
    """The model memory embeds with (`PARLEY_<PROVIDER>_EMBEDDING_MODEL`; `openai` defaults
    to `text-embedding-3-small`, `openai_compatible` has none unless set; others have no
    embeddings API and use the local embedder)."""

    def provider_settings(self) -> ProviderSettings:
        """The adapter's settings."""
        return ProviderSettings(
            base_url=self.base_url,
            connect_timeout=self.connect_timeout,
            idle_timeout=self.idle_timeout,
            max_retries=self.max_retries,
        )


class RuntimeSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one runtime process."""

    worker: str = msgspec.field(default_factory=_worker_name)
    """This process's name in events and slot leases (`PARLEY_WORKER`)."""
    queue_limit: int = 100
    """Requests per agent that may wait for a free instance (`PARLEY_QUEUE_LIMIT`)."""
    queue_timeout: float = 10.0
    """Seconds a request waits for a free instance before 429 (`PARLEY_QUEUE_TIMEOUT`)."""
    lease_ttl: float = 15.0
    """Seconds a slot lease lives unless renewed (`PARLEY_LEASE_TTL`)."""
    idle_timeout: float = 300.0
    """Seconds without a request before an agent's warm instance stops (`PARLEY_IDLE_TIMEOUT`)."""
    session_wait: float = 30.0
    """Seconds an `enqueue` message waits for the running turn (`PARLEY_SESSION_WAIT`)."""
    max_file_bytes: int = 512 * 1024
    """Largest session file (`PARLEY_MAX_FILE_BYTES`)."""
    ack_wait: float = 30.0
    """Seconds before an unacknowledged execution is redelivered (`PARLEY_ACK_WAIT`)."""
    executions_in_flight: int = 16
    """Executions one runtime works at once (`PARLEY_EXECUTIONS_IN_FLIGHT`)."""
    scheduler_tick: float = 0.5
    """Seconds between the scheduler's looks at periodic triggers (`PARLEY_SCHEDULER_TICK`)."""
    quota_max_instances: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Turns and executions one namespace may run at once, across runtimes
    (`PARLEY_QUOTA_MAX_INSTANCES`; 0: no limit)."""
    quota_daily_spend_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    """Model spend one namespace may reach per UTC day, priced from the model catalogue
    (`PARLEY_QUOTA_DAILY_SPEND_USD`; 0: no limit)."""
    providers: dict[str, ProviderEndpoint] = msgspec.field(default_factory=dict)
    """Each provider's endpoint (`PARLEY_<PROVIDER>_BASE_URL`, …); see :func:`load_settings`."""

    def endpoint(self, provider: str) -> ProviderEndpoint:
        """How to reach ``provider`` (the defaults when nothing is set for it)."""
        return self.providers.get(provider) or ProviderEndpoint()


def load_settings(environ: Mapping[str, str] | None = None) -> RuntimeSettings:
    """The runtime's settings, each provider's endpoint included, from the environment.

    Raises:
        SettingsError: Naming the variable that has a value its setting cannot take (also
            ``PARLEY_MODELS_FILE``, the operator's models catalogue).
    """
    try:
        load_catalogue()  # with the operator's PARLEY_MODELS_FILE, checked at start-up
    except CatalogueError as exc:
        raise SettingsError(str(exc)) from None
    env = os.environ if environ is None else environ
    settings = from_env(RuntimeSettings, env)
    providers = {
        name: from_env(ProviderEndpoint, env, prefix=f"PARLEY_{name.upper()}_")
        for name in PROVIDERS
    }
    return msgspec.structs.replace(settings, providers=providers)
