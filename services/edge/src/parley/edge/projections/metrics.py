"""The platform's counters, folded from every event: what Prometheus and the JSON metrics
views show of turns, executions, model calls, tools, messages, tasks and deployments.

Each event type that counts maps to one rule (:data:`_RULES`) that names the counters it
adds to; the counts are kept per namespace (the JSON views are namespace-scoped) and summed
over namespaces for Prometheus, whose series carry no namespace label. Like every edge
projection it follows the store from position 0, so its counts are the store's whole history
(the same on every edge replica, and after a restart).

Gauges of current state (agents by state, clusters) are not folded here: they are read from
the projections that already fold those streams, at read time.
"""

import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from nats.js import JetStreamContext

from parley.contracts.envelope import Event
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.edge.projections.queues import QueueDepths
from parley.eventstore import EventStore

__all__ = ["COUNTERS", "Namespace", "Series", "PlatformCounts", "PlatformMetrics", "Sample"]

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "parley_events": ("Events recorded, by stream category.", ("category",)),
    "parley_turns": ("Chat turns finished, by outcome.", ("outcome",)),
    "parley_executions": ("Executions finished, by outcome.", ("outcome",)),
    "parley_llm_calls": ("Model calls recorded, by provider and model.", ("provider", "model")),
    "parley_llm_tokens": (
        "Tokens of recorded model calls, by provider, model and direction (input, output).",
        ("provider", "model", "direction"),
    ),
    "parley_llm_cost_usd": (
        "Cost of recorded model calls in US dollars, by provider and model.",
        ("provider", "model"),
    ),
    "parley_tool_calls": ("Tool calls started, by tool.", ("tool",)),
    "parley_tool_failures": ("Tool calls that failed, by tool.", ("tool",)),
    "parley_messages": ("FIPA-ACL messages sent, by performative.", ("performative",)),
    "parley_message_deliveries": (
        "Message outcomes per receiver: delivered, failed, rejected.",
        ("outcome",),
    ),
    "parley_tasks_created": ("Tasks created.", ()),
    "parley_tasks": ("Tasks finished, by outcome.", ("outcome",)),
}
"""Counter name (without ``_total``) → (help, label names)."""

_WINDOW = timedelta(minutes=1)
_SAMPLES = 1_000
_SENT_KEPT = 10_000


Series = tuple[str, tuple[str, ...]]
"""A counter's name and label values."""


class Sample(NamedTuple):
    """One counter increment: counter name, label values, amount."""

    counter: str
    labels: tuple[str, ...]
    amount: float = 1.0


@dataclass(slots=True)
class Namespace:
    """What one namespace's events added up to."""

    counts: defaultdict[Series, float] = field(default_factory=lambda: defaultdict(float))
    """(counter, label values) → total."""
    runs: int = 0
    """Finished turns and executions."""
    runs_ok: int = 0
    """Of those, completed."""
    response_ms: float = 0.0
    """Sum of their response times."""
    recent_runs: deque[datetime] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    """When the latest runs finished."""
    recent_deliveries: deque[datetime] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    """When the latest messages were delivered."""
    delivery_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    """Sent → delivered latencies of the latest deliveries."""
    cold_start_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    """The latest instances' cold starts."""

    def since(self, times: Iterable[datetime], now: datetime) -> int:
        """How many of ``times`` fall in the last minute before ``now``."""
        return sum(1 for moment in times if now - moment <= _WINDOW)


def _suffix(event: Event) -> str:
    return event.type.rpartition(".")[2]


def _model_call(event: Event) -> Iterator[Sample]:
    data = event.data
    if data.get("kind") != "model":
        return
    provider, model = str(data.get("provider") or "unknown"), str(data.get("model") or "unknown")
    usage: dict[str, Any] = data.get("usage") or {}
    yield Sample("parley_llm_calls", (provider, model))
    yield Sample("parley_llm_tokens", (provider, model, "input"), usage.get("input_tokens", 0))
    yield Sample("parley_llm_tokens", (provider, model, "output"), usage.get("output_tokens", 0))
    yield Sample("parley_llm_cost_usd", (provider, model), usage.get("cost_usd", 0.0))


def _one(
    counter: str, label: Callable[[Event], str] | None = None
) -> Callable[[Event], Iterator[Sample]]:
    def rule(event: Event) -> Iterator[Sample]:
        yield Sample(counter, (label(event),) if label else ())

    return rule


def _tool(event: Event) -> str:
    return str(event.data.get("name", "unknown"))


def _performative(event: Event) -> str:
    return str(event.data.get("message", {}).get("performative", "unknown"))


_RULES: dict[str, Callable[[Event], Iterator[Sample]]] = {
    **{
        f"turn.{o}": _one("parley_turns", _suffix)
        for o in ("completed", "failed", "cancelled", "interrupted")
    },
    **{
        f"execution.{o}": _one("parley_executions", _suffix)
        for o in ("completed", "failed", "cancelled")
    },
    "turn.step_recorded": _model_call,
    "execution.step_recorded": _model_call,
    "tool.called": _one("parley_tool_calls", _tool),
    "tool.failed": _one("parley_tool_failures", _tool),
    "message.sent": _one("parley_messages", _performative),
    **{
        f"message.{o}": _one("parley_message_deliveries", _suffix)
        for o in ("delivered", "failed", "rejected")
    },
    "task.created": _one("parley_tasks_created"),
    **{f"task.{o}": _one("parley_tasks", _suffix) for o in ("completed", "failed", "cancelled")},
}
"""Event type → the counter samples it adds."""

_RUN_ENDS = frozenset(
    t for t in _RULES if t.startswith(("turn.", "execution.")) and "step" not in t
)


class PlatformCounts(FoldingProjection):
    """Counters per namespace, folded from every event (see the module)."""

    name = "metrics-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.namespaces: defaultdict[str, Namespace] = defaultdict(Namespace)
        """Namespace → its counts (every namespace that recorded an event)."""
        self.deployments: dict[str, str] = {}
        """Deployment id → state, the suffix of its latest ``deployment.*`` event: a hook for
        deployment events (none are recorded yet)."""
        self._sent: OrderedDict[str, datetime] = OrderedDict()

    def totals(self) -> dict[Series, float]:
        """Every counter summed over namespaces."""
        total: defaultdict[Series, float] = defaultdict(float)
        for ns in list(self.namespaces.values()):
            for series, value in list(ns.counts.items()):
                total[series] += value
        return total

    def _fold(self, event: Event) -> None:
        ns = self.namespaces[event.namespace]
        ns.counts["parley_events", (event.stream.partition("-")[0],)] += 1
        rule = _RULES.get(event.type)
        if rule is not None:
            for sample in rule(event):
                ns.counts[sample.counter, sample.labels] += sample.amount
        if event.type in _RUN_ENDS:
            ns.runs += 1
            ns.runs_ok += event.type.endswith(".completed")
            ns.response_ms += float(event.data.get("response_time_ms", 0.0))
            ns.recent_runs.append(event.time)
        elif event.type == "message.sent":
            self._sent[str(event.data.get("message", {}).get("message_id"))] = event.time
            if len(self._sent) > _SENT_KEPT:
                self._sent.popitem(last=False)
        elif event.type == "message.delivered":
            ns.recent_deliveries.append(event.time)
            sent = self._sent.get(str(event.data.get("message_id")))
            if sent is not None:
                ns.delivery_ms.append((event.time - sent).total_seconds() * 1000)
        elif event.type == "instance.started":
            ns.cold_start_ms.append(float(event.data.get("cold_start_ms", 0.0)))
        elif event.type.startswith("deployment."):
            self.deployments[event.subject] = _suffix(event)


class PlatformMetrics:
    """Everything the metrics views read: the counters, the queue poll, and the agents' and
    clusters' projections (for the gauges of current state)."""

    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        agents: AgentsProjection,
        clusters: ClustersProjection,
    ) -> None:
        self.counts = PlatformCounts(store)
        self.queues = QueueDepths(js)
        self.agents, self.clusters = agents, clusters
        self.started = time.monotonic()

    def agent_states(self, namespace: str | None = None) -> Counter[str]:
        """Live agents by state, in ``namespace`` or (None) in every namespace."""
        spaces = self.counts.namespaces if namespace is None else (namespace,)
        return Counter(view.state.value for ns in list(spaces) for view in self.agents.agents(ns))

    def cluster_states(self, namespace: str | None = None) -> Counter[str]:
        """Clusters by state (and ``scaling``: those scaling now), like :meth:`agent_states`."""
        spaces = self.counts.namespaces if namespace is None else (namespace,)
        states: Counter[str] = Counter()
        for ns in list(spaces):
            for view in self.clusters.clusters(ns):
                states[view.state] += 1
                states["scaling"] += view.scaling
        return states
