"""An agent's runs over time (finished turns and executions), for the agent page's charts."""

from typing import Any
from typing import NamedTuple

from markupsafe import Markup

from parley.edge.console.charts import spark
from parley.edge.projections.runtime import RuntimeProjection

__all__ = ["Run", "charts", "runs"]


class Run(NamedTuple):
    """One finished turn or execution."""

    time: str
    response_time_ms: float
    tokens: float
    cost_usd: float
    failed: bool


def _tokens(usage: dict[str, Any] | None) -> float:
    usage = usage or {}
    given = usage.get("tokens") or usage.get("total_tokens")
    if isinstance(given, int | float):
        return float(given)
    return float(usage.get("input_tokens", 0) or 0) + float(usage.get("output_tokens", 0) or 0)


def _run(time: str, ms: float | None, usage: dict[str, Any] | None, failed: bool) -> Run:
    cost = (usage or {}).get("cost_usd", 0.0)
    return Run(time, ms or 0.0, _tokens(usage), float(cost or 0.0), failed)


def runs(runtime: RuntimeProjection, namespace: str, agent_id: str, last: int = 60) -> list[Run]:
    """The newest ``last`` finished runs of ``agent_id``, oldest first."""
    found = [
        _run(e.finished_at, e.response_time_ms, e.usage, e.status == "failed")
        for e in runtime.executions(namespace, agent_id)
        if e.finished_at is not None
    ]
    for session in runtime.sessions(namespace, agent_id):
        detail = runtime.session(namespace, session.id)
        for entry in detail.history if detail is not None else ():
            if entry.outcome is not None:
                failed = entry.outcome == "failed"
                found.append(_run(entry.time, entry.response_time_ms, entry.usage, failed))
    return sorted(found)[-last:]


def charts(found: list[Run]) -> list[Markup]:
    """Response time, tokens, spend and failures per run, as small charts."""
    return [
        spark([r.response_time_ms for r in found], "response time (ms)"),
        spark([r.tokens for r in found], "tokens per run"),
        spark([r.cost_usd for r in found], "spend per run (USD)"),
        spark([float(r.failed) for r in found], "failures"),
    ]
