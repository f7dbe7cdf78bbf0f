"""What a run is built of: its provider, system prompt (or persona), tools, and meter; and
the record of how it ended (:class:`RunTally`)."""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from parley.aggregates.journal import Journal
from parley.aggregates.session import Said
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.models import load_catalogue
from parley.contracts.models import model_warnings
from parley.contracts.registry import Budget
from parley.contracts.registry import ToolSpec
from parley.contracts.runtime import RunFinished
from parley.contracts.runtime import RunOutcome
from parley.contracts.runtime import Usage
from parley.identity.scrub import Scrubber
from parley.llm import Message
from parley.llm import Usage as CallUsage
from parley.runtime.adapters.budgets import BudgetKeeper
from parley.runtime.adapters.memory import AgentMemory
from parley.runtime.adapters.messenger import AgentMessenger
from parley.runtime.adapters.spend import SpendKeeper
from parley.runtime.deps import Deps
from parley.runtime.domain import Effective
from parley.runtime.errors import RuntimeFault
from parley.runtime.errors import scrubbed
from parley.runtime.run_loop import Recorder
from parley.runtime.run_loop import Run
from parley.runtime.run_loop import RunSpec
from parley.runtime.run_loop import Sink
from parley.runtime.tools import FileReader
from parley.runtime.tools import ToolContext

__all__ = ["MEMORY_TOOLS", "RunMeter", "RunTally", "build_run"]

MEMORY_TOOLS = ("remember", "recall")
"""The tools every agent with ``memory.enabled`` is offered."""

log = logging.getLogger(__name__)
_UNPRICED: set[tuple[str, str]] = set()
"""Models this process warned about having no price (one log line each)."""


class RunMeter:
    """Prices a run's calls from the catalogue and enforces the agent's budget and the
    namespace's daily spend quota."""

    def __init__(
        self,
        budgets: BudgetKeeper,
        spend: SpendKeeper,
        *,
        agent_id: str | None,
        budget: Budget | None,
        provider: str,
        model: str,
        namespace: str,
    ) -> None:
        self.budgets, self.spend, self.agent_id, self.budget = budgets, spend, agent_id, budget
        self.namespace = namespace
        info = load_catalogue().find(provider, model)
        self._price = info.price if info is not None else None
        if info is None and (provider, model) not in _UNPRICED:
            _UNPRICED.add((provider, model))
            log.warning("%s", " ".join(model_warnings(provider, model)) or f"{model} unpriced")

    async def before_call(self) -> None:
        """Refuse with ``QUOTA_EXCEEDED`` once the namespace's spend of the day reached its
        quota, with ``BUDGET_EXCEEDED`` once the agent's budget is spent."""
        await self.spend.check(self.namespace)
        if self.agent_id is None:
            return
        if reason := await self.budgets.refusal(self.agent_id, self.budget):
            raise RuntimeFault(ErrorCode.BUDGET_EXCEEDED, reason)

    async def after_call(self, usage: Usage) -> None:
        """Settle the call against the budget (budget events when a threshold is crossed)
        and add its cost to the namespace's spend of the day."""
        await self.spend.record(self.namespace, self.agent_id, usage.cost_usd)
        if self.agent_id is not None:
            await self.budgets.settle(self.agent_id, self.budget, usage, self.namespace)

    def price(self, usage: CallUsage, *, estimated: bool = False) -> Usage:
        """The call's usage with its cost (0, and ``price_unknown``, when the catalogue has
        no price for the model)."""
        cost = self._price.cost(usage.input_tokens, usage.output_tokens) if self._price else 0.0
        return Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=round(cost, 8),
            estimated=estimated,
            price_unknown=self._price is None,
        )


async def build_run(
    deps: Deps,
    settings: Effective,
    *,
    run_id: str,
    kind: Literal["turn", "execution"],
    namespace: str,
    agent_id: str | None,
    history: Sequence[Said],
    input: str,
    session_id: str | None,
    files: FileReader | None,
    hops: int,
    journal: Journal,
    recorder: Recorder,
    sink: Sink,
) -> Run:
    """A run of ``settings``: its provider, system prompt (or persona), tools and meter.

    An agent with ``memory.enabled`` also gets the `remember` and `recall` tools, and the
    memories nearest ``input`` after its system prompt (bounded, see
    :mod:`parley.runtime.adapters.memory`).

    Its tools run for ``agent_id`` in ``namespace`` (and ``session_id``, with its ``files``);
    the agent's messages carry ``hops`` plus one.

    Raises:
        RuntimeFault: ``VALIDATION_ERROR`` when the persona no longer exists.
    """
    system = settings.system_prompt
    if system is None and settings.persona is not None:
        system = await deps.persona_text(namespace, settings.persona)
    memory = _memory(deps, settings, namespace, agent_id)
    tools = settings.tools
    if memory is not None:
        offered = {tool.name for tool in tools}
        tools = [*tools, *(ToolSpec(name=n) for n in MEMORY_TOOLS if n not in offered)]
        if recollected := await memory.recollect(input):
            system = f"{system}\n\n{recollected}" if system else recollected
    spec = RunSpec(
        run_id=run_id,
        kind=kind,
        provider=deps.provider(settings.provider),
        model=settings.model,
        system=system,
        params=settings.params,
        tools=tools,
        strategy=settings.strategy,
        history=tuple(Message(said.role, said.content) for said in history),
        input=input,
        tool_context=ToolContext(
            namespace=namespace,
            agent_id=agent_id,
            session_id=session_id,
            files=files,
            messenger=AgentMessenger(deps.nc, namespace=namespace, agent_id=agent_id, hops=hops)
            if agent_id
            else None,
            memory=memory,
        ),
        scrub=deps.scrubber.scrub,
        approvals=kind == "execution",
    )
    meter = RunMeter(
        deps.budgets,
        deps.spend,
        agent_id=agent_id,
        budget=settings.budget,
        provider=settings.provider,
        model=settings.model,
        namespace=namespace,
    )
    return Run(spec, journal, recorder, sink, meter)


def _memory(
    deps: Deps, settings: Effective, namespace: str, agent_id: str | None
) -> AgentMemory | None:
    """The agent's memory, when it has ``memory.enabled`` (and this process an index)."""
    if settings.memory is None or agent_id is None or deps.memories is None:
        return None
    return AgentMemory(
        deps.nc,
        deps.memories,
        deps.embedder(settings.provider),
        namespace=namespace,
        agent_id=agent_id,
        scope=settings.memory,
    )


@dataclass(frozen=True)
class RunTally:
    """Which run this is and since when (``time.monotonic()``): what records how it ended."""

    scrubber: Scrubber
    run_id: str
    agent_id: str | None
    session_id: str | None = None
    began: float = field(default_factory=time.monotonic)

    def finished(
        self, run: Run | None, outcome: RunOutcome, output: str, error: ErrorBody | None
    ) -> RunFinished:
        """How the run (None: it was never built) ended, as recorded: its output and error
        scrubbed of secrets, its usage, steps and time taken."""
        finished = RunFinished(
            run_id=self.run_id,
            outcome=outcome,
            output=self.scrubber.scrub(output),
            response_time_ms=round((time.monotonic() - self.began) * 1000, 3),
            steps=run.steps if run is not None else 0,
            error=scrubbed(error, self.scrubber),
            agent_id=self.agent_id,
            session_id=self.session_id,
        )
        if run is not None:
            finished.usage = run.usage
            finished.last_step = run.take_held()
        return finished
