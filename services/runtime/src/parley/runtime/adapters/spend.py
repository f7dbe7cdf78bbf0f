"""The daily model-spend quota of each namespace, against ``spend-<namespace>-<yyyymmdd>``.

With ``PARLEY_QUOTA_DAILY_SPEND_USD`` set, every priced model call adds its cost to its
namespace's stream of the UTC day (``spend.recorded``), and every model call (and every turn,
before it starts) is refused with ``QUOTA_EXCEEDED`` once the day's spend has reached the
quota. The fold and the decider are :mod:`parley.aggregates.spend`; each check catches up on
what other runtimes appended since (one read from the cached version on), and runtimes
recording at once serialise on the stream's version through the repository. Without the
quota nothing is read or recorded.
"""

from parley.aggregates.decision import Context
from parley.aggregates.decision import to_new_events
from parley.aggregates.spend import Record
from parley.aggregates.spend import SpendState
from parley.aggregates.spend import decide
from parley.aggregates.spend import evolve
from parley.aggregates.spend import over_quota
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import spend_stream
from parley.eventstore import EventStore
from parley.eventstore.repository import Repository
from parley.eventstore.repository import fold
from parley.runtime.errors import RuntimeFault

__all__ = ["SpendKeeper"]

_SOURCE = "/parley/runtime"


def _today() -> str:
    return utcnow().strftime("%Y%m%d")


class SpendKeeper:
    """Checks and records namespaces' model spend of the day against the daily quota."""

    def __init__(self, store: EventStore, *, daily_limit_usd: float) -> None:
        self.store, self.limit = store, daily_limit_usd
        self.repository: Repository[SpendState] = Repository(store, evolve)

    async def check(self, namespace: str) -> None:
        """Refuse a model call of ``namespace`` once its spend of the day reached the quota.

        Raises:
            RuntimeFault: ``QUOTA_EXCEEDED`` with ``{quota, spent, limit}``.
        """
        if self.limit <= 0:
            return
        stream = spend_stream(namespace, _today())
        cached = self.repository.cached(stream)
        start = cached.version + 1 if cached is not None else 1
        loaded = fold(await self.store.read(stream, start), evolve, cached)
        self.repository.remember(stream, loaded)
        spent = over_quota(loaded.state, self.limit, utcnow())
        if spent is not None:
            raise RuntimeFault(
                ErrorCode.QUOTA_EXCEEDED,
                f"namespace {namespace!r} spent ${spent:.6f} on models today (UTC), its daily"
                f" quota is ${self.limit:g} (PARLEY_QUOTA_DAILY_SPEND_USD)",
                {"quota": "daily_spend_usd", "spent": spent, "limit": self.limit},
            )

    async def record(self, namespace: str, agent_id: str | None, cost_usd: float) -> None:
        """Add one call's cost to the namespace's spend of the day (nothing when free)."""
        if self.limit <= 0 or cost_usd <= 0:
            return
        ctx = Context(utcnow())
        command = Record(namespace=namespace, agent_id=agent_id, cost_usd=cost_usd)

        def decide_now(state: SpendState | None) -> list[NewEvent]:
            return to_new_events(
                decide(state, command, ctx).events,
                subject=namespace,
                namespace=namespace,
                source=_SOURCE,
                now=ctx.now,
            )

        await self.repository.execute(
            spend_stream(namespace, ctx.now.strftime("%Y%m%d")), decide_now
        )
