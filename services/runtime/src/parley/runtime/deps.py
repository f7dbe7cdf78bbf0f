"""The runtime process's shared parts, built once at start-up by :mod:`parley.runtime.app`."""

from dataclasses import dataclass
from dataclasses import field

from nats.aio.client import Client
from nats.js import JetStreamContext

from parley.aggregates import execution
from parley.aggregates import persona
from parley.aggregates import session
from parley.aggregates.execution import Execution
from parley.aggregates.session import Session
from parley.contracts.errors import ErrorCode
from parley.contracts.personas import load_builtin_personas
from parley.contracts.personas import persona_stream
from parley.eventstore import EventStore
from parley.eventstore.repository import Repository
from parley.eventstore.repository import load
from parley.identity.scrub import Scrubber
from parley.llm import Provider
from parley.llm import ScrubbedProvider
from parley.llm import provider_for
from parley.llm.embeddings import OpenAIEmbeddings
from parley.llm.embeddings import embeddings_for
from parley.memory.book import MemoryProjection
from parley.runtime.adapters.budgets import BudgetKeeper
from parley.runtime.adapters.directory import AgentDirectory
from parley.runtime.adapters.files import FileStore
from parley.runtime.adapters.slots import Capacity
from parley.runtime.adapters.spend import SpendKeeper
from parley.runtime.bidding import AgentStats
from parley.runtime.errors import RuntimeFault
from parley.runtime.settings import RuntimeSettings

__all__ = ["Deps"]


@dataclass
class Deps:
    """The runtime process's shared parts."""

    settings: RuntimeSettings
    nc: Client
    js: JetStreamContext
    store: EventStore
    directory: AgentDirectory
    budgets: BudgetKeeper
    spend: SpendKeeper
    capacity: Capacity
    files: FileStore
    secrets: frozenset[str]
    """The secrets this process knows (provider keys, secret files: from its environment)."""
    sessions: Repository[Session] = field(init=False)
    """Sessions as this process last folded them (turns start from this copy)."""
    executions: Repository[Execution] = field(init=False)
    scrubber: Scrubber = field(init=False)
    """The process's one scrubber: the known secrets and credential shapes, removed from
    whatever a provider or a tool sends back."""
    providers: dict[str, Provider] = field(default_factory=dict)
    stats: AgentStats = field(default_factory=AgentStats)
    """What this process measured of each agent's turns (for bids)."""
    memories: MemoryProjection | None = None
    """Every memory, folded and indexed (None: the agents' memory is off in this process)."""
    embedders: dict[str, OpenAIEmbeddings | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sessions = Repository(self.store, session.evolve)
        self.executions = Repository(self.store, execution.evolve)
        self.scrubber = Scrubber(self.secrets)

    def provider(self, name: str) -> Provider:
        """The process's adapter for ``name`` (one per provider: one circuit breaker),
        its text and errors scrubbed of secrets."""
        if name not in self.providers:
            endpoint = self.settings.endpoint(name)
            adapter = provider_for(name, endpoint.provider_settings())
            self.providers[name] = ScrubbedProvider(adapter, self.scrubber.scrub, self.secrets)
        return self.providers[name]

    def embedder(self, provider: str) -> OpenAIEmbeddings | None:
        """The embeddings of ``provider`` (one per provider), or None where it has none."""
        if provider not in self.embedders:
            endpoint = self.settings.endpoint(provider)
            self.embedders[provider] = embeddings_for(
                provider, endpoint.provider_settings(), endpoint.embedding_model
            )
        return self.embedders[provider]

    async def close_providers(self) -> None:
        """Close every provider adapter (and embeddings client) this process opened."""
        for provider in self.providers.values():
            await provider.aclose()
        for embeddings in self.embedders.values():
            if embeddings is not None:
                await embeddings.aclose()

    async def persona_text(self, namespace: str, name: str) -> str:
        """A persona's content: a built-in, or the namespace's created one."""
        builtin = load_builtin_personas().get(name)
        if builtin is not None:
            return builtin.content
        created = (await load(self.store, persona_stream(namespace, name), persona.evolve)).state
        if created is None or created.deleted:
            raise RuntimeFault(
                ErrorCode.VALIDATION_ERROR,
                f"persona {name!r} does not exist; see GET /api/v1/personas",
            )
        return created.spec.content
