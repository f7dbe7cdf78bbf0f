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
from collections import Counter
from collections import OrderedDict
from collections import defaultdict
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from nats.js import JetStreamContext

from parley.contracts.envelope import Event
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.edge.projections.queues import QueueDepths
from parley.eventstore import EventStore

__all__ = ["COUNTERS", "Namespace", "PlatformCounts", "PlatformMetrics", "Rule", "Series"]

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
        "Message outcomes: delivered or failed (per receiver), rejected (a reply refused).",
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
    sent_at: OrderedDict[str, datetime] = field(default_factory=OrderedDict)
    """When the latest messages were sent, by message id (for the delivery latency)."""

    def add(self, counter: str, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        """Add ``amount`` to one series of ``counter``."""
        self.counts[counter, labels] += amount

    def since(self, times: Iterable[datetime], now: datetime) -> int:
        """How many of ``times`` fall in the last minute before ``now``."""
        return sum(1 for moment in times if now - moment <= _WINDOW)


Rule = Callable[[Namespace, Event], None]
"""What one event type adds to its namespace's counts."""


def _suffix(event: Event) -> str:
    return event.type.rpartition(".")[2]


def _count(counter: str, label: Callable[[Event], str] | None = None) -> Rule:
    def rule(ns: Namespace, event: Event) -> None:
        ns.add(counter, (label(event),) if label else ())

    return rule


def _run_ended(counter: str) -> Rule:
    def rule(ns: Namespace, event: Event) -> None:
        ns.add(counter, (_suffix(event),))
        ns.runs += 1
        ns.runs_ok += _suffix(event) == "completed"
        ns.response_ms += float(event.data.get("response_time_ms", 0.0))
        ns.recent_runs.append(event.time)
        if last := event.data.get("last_step"):  # its last model call, recorded with its end
            _count_call(ns, last)

    return rule


def _model_call(ns: Namespace, event: Event) -> None:
    _count_call(ns, event.data)


def _count_call(ns: Namespace, data: dict[str, Any]) -> None:
    if data.get("kind") != "model":
        return
    provider, model = str(data.get("provider") or "unknown"), str(data.get("model") or "unknown")
    usage: dict[str, Any] = data.get("usage") or {}
    ns.add("parley_llm_calls", (provider, model))
    ns.add("parley_llm_tokens", (provider, model, "input"), usage.get("input_tokens", 0))
    ns.add("parley_llm_tokens", (provider, model, "output"), usage.get("output_tokens", 0))
    ns.add("parley_llm_cost_usd", (provider, model), usage.get("cost_usd", 0.0))


def _tool(event: Event) -> str:
    return str(event.data.get("name", "unknown"))


def _message_sent(ns: Namespace, event: Event) -> None:
    if isinstance(receipt := event.data.get("receipt"), dict):
        _delivered(ns, receipt, event.time)
    message = event.data.get("message", {})
    ns.add("parley_messages", (str(message.get("performative", "unknown")),))
    ns.sent_at[str(message.get("message_id"))] = event.time
    if len(ns.sent_at) > _SENT_KEPT:
        ns.sent_at.popitem(last=False)


def _message_delivered(ns: Namespace, event: Event) -> None:
    _delivered(ns, event.data, event.time)


def _delivered(ns: Namespace, taken: dict[str, Any], at: datetime) -> None:
    """A runtime took a message: its ``message.delivered``, or a reply's ``receipt``."""
    ns.add("parley_message_deliveries", ("delivered",))
    ns.recent_deliveries.append(at)
    sent = ns.sent_at.get(str(taken.get("message_id")))
    if sent is not None:
        ns.delivery_ms.append((at - sent).total_seconds() * 1000)


def _cold_start(ns: Namespace, event: Event) -> None:
    ns.cold_start_ms.append(float(event.data.get("cold_start_ms", 0.0)))


_RULES: dict[str, Rule] = {
    **{
        f"turn.{end}": _run_ended("parley_turns")
        for end in ("completed", "failed", "cancelled", "interrupted")
    },
    **{
        f"execution.{end}": _run_ended("parley_executions")
        for end in ("completed", "failed", "cancelled")
    },
    "turn.step_recorded": _model_call,
    "execution.step_recorded": _model_call,
    "tool.called": _count("parley_tool_calls", _tool),
    "tool.failed": _count("parley_tool_failures", _tool),
    "message.sent": _message_sent,
    "message.delivered": _message_delivered,
    "message.failed": _count("parley_message_deliveries", _suffix),
    "message.rejected": _count("parley_message_deliveries", _suffix),
    "task.created": _count("parley_tasks_created"),
    **{
        f"task.{end}": _count("parley_tasks", _suffix)
        for end in ("completed", "failed", "cancelled")
    },
    "instance.started": _cold_start,
}
"""Event type → what it adds; other types are only counted in ``parley_events``."""


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

    def totals(self) -> dict[Series, float]:
        """Every counter summed over namespaces."""
        total: defaultdict[Series, float] = defaultdict(float)
        for ns in list(self.namespaces.values()):
            for series, value in list(ns.counts.items()):
                total[series] += value
        return total

    def _fold(self, event: Event) -> None:
        ns = self.namespaces[event.namespace]
        ns.add("parley_events", (event.stream.partition("-")[0],))
        rule = _RULES.get(event.type)
        if rule is not None:
            rule(ns, event)
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
