"""What every runtime handler shares: connections, views, and the pieces a run is built of.

- :class:`Deps`: the store, NATS, the agents view, budgets, capacity, files, providers.
- :func:`effective`: an agent's definition overlaid with a session's settings.
- :class:`StreamRecorder`, :class:`DeltaPublisher`, :class:`RunMeter`: the recorder, sink
  and meter a :class:`~parley.runtime.runs.Run` writes to.
"""

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from parley.aggregates.agent import Agent
from parley.contracts.envelope import Event, NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.models import load_catalogue
from parley.contracts.personas import PersonaCreated, load_builtin_personas, persona_stream
from parley.contracts.registry import AgentState, Budget, ModelParams, StrategySpec, ToolSpec
from parley.contracts.runtime import SessionSettings, TurnDelta, Usage, turn_subject
from parley.eventstore import ANY_VERSION, EventStore
from parley.llm import Message, Provider, ProviderSettings, provider_for
from parley.llm import Usage as CallUsage
from parley.runtime.bidding import AgentStats
from parley.runtime.budgets import BudgetKeeper
from parley.runtime.capacity import Capacity
from parley.runtime.directory import AgentDirectory
from parley.runtime.errors import RuntimeFault
from parley.runtime.files import FileStore
from parley.runtime.journal import Journal
from parley.runtime.runs import Run, RunSpec, Sink
from parley.runtime.settings import RuntimeSettings
from parley.runtime.tools import ToolContext

__all__ = [
    "DeltaPublisher",
    "Deps",
    "Effective",
    "RunMeter",
    "StreamRecorder",
    "build_run",
    "effective",
    "running_agent",
]

SOURCE = "/parley/runtime"
_encode = msgspec.json.Encoder().encode


@dataclass
class Deps:
    """The runtime process's shared parts."""

    settings: RuntimeSettings
    nc: Client
    js: JetStreamContext
    store: EventStore
    directory: AgentDirectory
    budgets: BudgetKeeper
    capacity: Capacity
    files: FileStore
    providers: dict[str, Provider] = field(default_factory=dict)
    stats: AgentStats = field(default_factory=AgentStats)
    """What this process measured of each agent's turns (for bids)."""

    def provider(self, name: str) -> Provider:
        """The process's adapter for ``name`` (one per provider: one circuit breaker)."""
        if name not in self.providers:
            prefix = f"PARLEY_{name.upper()}_"
            self.providers[name] = provider_for(
                name,
                ProviderSettings(
                    base_url=os.environ.get(prefix + "BASE_URL"),
                    connect_timeout=float(os.environ.get(prefix + "CONNECT_TIMEOUT", 5.0)),
                    idle_timeout=float(os.environ.get(prefix + "IDLE_TIMEOUT", 60.0)),
                    max_retries=int(os.environ.get(prefix + "MAX_RETRIES", 2)),
                ),
            )
        return self.providers[name]

    async def persona_text(self, namespace: str, name: str) -> str:
        """A persona's content: a built-in, or the namespace's created one."""
        builtin = load_builtin_personas().get(name)
        if builtin is not None:
            return builtin.content
        content: str | None = None
        for event in await self.store.read(persona_stream(namespace, name)):
            if event.type == "persona.created":
                content = msgspec.convert(event.data, PersonaCreated).spec.content
            elif event.type == "persona.deleted":
                content = None
        if content is None:
            raise RuntimeFault(
                ErrorCode.VALIDATION_ERROR,
                f"persona {name!r} does not exist; see GET /api/v1/personas",
            )
        return content


@dataclass(frozen=True)
class Effective:
    """The settings a turn runs with."""

    provider: str
    model: str
    system_prompt: str | None
    persona: str | None
    params: ModelParams
    tools: list[ToolSpec]
    strategy: StrategySpec
    budget: Budget | None
    instances: int


def effective(agent: Agent | None, settings: SessionSettings) -> Effective:
    """An agent's definition with the session's settings on top (or the session alone)."""
    spec = agent.spec if agent is not None else None
    prompt_from_session = settings.system_prompt is not None or settings.persona is not None
    return Effective(
        provider=settings.provider or (spec.provider if spec else "offline"),
        model=settings.model or (spec.model if spec else "offline-1"),
        system_prompt=settings.system_prompt
        if prompt_from_session
        else (spec.system_prompt if spec else None),
        persona=settings.persona if prompt_from_session else (spec.persona if spec else None),
        params=settings.params or (spec.params if spec else ModelParams()),
        tools=settings.tools if settings.tools is not None else (spec.tools if spec else []),
        strategy=settings.strategy or (spec.strategy if spec else StrategySpec()),
        budget=spec.budget if spec else None,
        instances=spec.instances if spec else 1,
    )


def running_agent(deps: Deps, agent_id: str, namespace: str) -> Agent:
    """The agent, which must exist in ``namespace`` and be running.

    Raises:
        RuntimeFault: ``AGENT_NOT_FOUND`` or ``AGENT_NOT_RUNNING``.
    """
    agent = deps.directory.get(agent_id)
    if agent is None or agent.namespace != namespace:
        raise RuntimeFault(ErrorCode.AGENT_NOT_FOUND, f"no agent {agent_id!r}")
    if agent.state is not AgentState.RUNNING:
        raise RuntimeFault(
            ErrorCode.AGENT_NOT_RUNNING,
            f"agent {agent_id!r} is {agent.state.value}; start or resume it first",
            {"state": agent.state.value},
        )
    return agent


class StreamRecorder:
    """Appends a run's events to one stream, in order."""

    def __init__(
        self,
        store: EventStore,
        stream: str,
        *,
        subject: str,
        namespace: str,
        correlation_id: str | None,
        traceparent: str | None,
        expected_version: int | None = None,
    ) -> None:
        self.store, self.stream, self.subject = store, stream, subject
        self.namespace, self.correlation_id, self.traceparent = (
            namespace,
            correlation_id,
            traceparent,
        )
        self.version = expected_version
        self.position = 0
        self.on_recorded: Callable[[Event], None] | None = None
        """Called with each recorded event (e.g. to keep a cached fold current)."""
        self.gate: asyncio.Future[None] | None = None
        """Nothing is appended before this resolves (a turn started before its start event)."""

    def event(self, type: str, payload: msgspec.Struct | dict[str, Any]) -> NewEvent:
        """The envelope for one of this run's events."""
        data = payload if isinstance(payload, dict) else msgspec.to_builtins(payload)
        return NewEvent(
            type=type,
            subject=self.subject,
            data=data,
            namespace=self.namespace,
            source=SOURCE,
            correlationid=self.correlation_id,
            traceparent=self.traceparent,
        )

    async def record(self, type: str, payload: msgspec.Struct | dict[str, Any]) -> None:
        """Append one event, once the gate (if any) is open, at the expected version when the
        run owns the stream."""
        if self.gate is not None and not self.gate.done():
            await asyncio.shield(self.gate)
        expected = ANY_VERSION if self.version is None else self.version
        new = self.event(type, payload)
        result = await self.store.append(self.stream, [new], expected)
        if self.version is not None:
            self.version = result.version
        self.position = result.position
        if self.on_recorded is not None:
            self.on_recorded(
                Event.record(
                    new, stream=self.stream, version=result.version, position=result.position
                )
            )


class DeltaPublisher:
    """Publishes a turn's frames on its subject; keeps the text for a partial answer."""

    def __init__(
        self,
        nc: Client,
        turn_id: str,
        extra: dict[str, Any] | None = None,
        *,
        live: bool = True,
        gate: asyncio.Future[None] | None = None,
    ) -> None:
        self.nc, self.turn_id, self.live, self.gate = nc, turn_id, live, gate
        self._held: list[bytes] = []
        self._flusher: asyncio.Task[None] | None = None
        if gate is not None:
            gate.add_done_callback(self._opened)
        self.subject = turn_subject(turn_id)
        self.seq = 0
        self.text: list[str] = []
        self.extra = extra or {}

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Publish one frame (core NATS; the delta stream keeps a copy for resume)."""
        self.seq += 1
        if type == "token":
            self.text.append(data.get("text", ""))
        if not self.live:
            return  # a sync turn: nobody follows its frames
        frame = TurnDelta(
            seq=self.seq, type=type, turn_id=self.turn_id, data={**self.extra, **data}
        )  # type: ignore[arg-type]
        if self.gate is not None and not self.gate.done():
            self._held.append(_encode(frame))  # published once the turn has started
            return
        await self._flush()
        await self.nc.publish(self.subject, _encode(frame))

    def _opened(self, gate: asyncio.Future[None]) -> None:
        if gate.cancelled() or gate.exception() is not None:
            self._held.clear()  # the turn never started: nobody sees its frames
        elif self._held:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        held, self._held = self._held, []
        for frame in held:
            await self.nc.publish(self.subject, frame)


class NullSink:
    """A sink for runs nobody watches live (executions); frames are dropped."""

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Drop the frame."""


class RunMeter:
    """Prices a run's calls from the catalogue and enforces the agent's budget."""

    def __init__(
        self,
        budgets: BudgetKeeper,
        *,
        agent_id: str | None,
        budget: Budget | None,
        provider: str,
        model: str,
        namespace: str,
    ) -> None:
        self.budgets, self.agent_id, self.budget = budgets, agent_id, budget
        self.namespace = namespace
        info = load_catalogue().find(provider, model)
        self._price = info.price if info is not None else None

    async def before_call(self) -> None:
        """Refuse with ``BUDGET_EXCEEDED`` once the agent's budget is spent."""
        if self.agent_id is None:
            return
        if reason := await self.budgets.refusal(self.agent_id, self.budget):
            raise RuntimeFault(ErrorCode.BUDGET_EXCEEDED, reason)

    async def after_call(self, usage: Usage) -> None:
        """Settle the call against the budget (budget events when a threshold is crossed)."""
        if self.agent_id is not None:
            await self.budgets.settle(self.agent_id, self.budget, usage, self.namespace)

    def price(self, usage: CallUsage, *, estimated: bool = False) -> Usage:
        """The call's usage with its cost (0 when the catalogue has no price)."""
        cost = self._price.cost(usage.input_tokens, usage.output_tokens) if self._price else 0.0
        return Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=round(cost, 8),
            estimated=estimated,
        )


async def build_run(
    deps: Deps,
    settings: Effective,
    *,
    run_id: str,
    kind: Literal["turn", "execution"],
    namespace: str,
    agent_id: str | None,
    history: tuple[Message, ...],
    input: str,
    tool_context: ToolContext,
    journal: Journal,
    recorder: StreamRecorder,
    sink: Sink,
) -> Run:
    """A run of ``settings``: its provider, system prompt (or persona), tools and meter.

    Raises:
        RuntimeFault: ``VALIDATION_ERROR`` when the persona no longer exists.
    """
    system = settings.system_prompt
    if system is None and settings.persona is not None:
        system = await deps.persona_text(namespace, settings.persona)
    spec = RunSpec(
        run_id=run_id,
        kind=kind,
        provider=deps.provider(settings.provider),
        model=settings.model,
        system=system,
        params=settings.params,
        tools=settings.tools,
        strategy=settings.strategy,
        history=history,
        input=input,
        tool_context=tool_context,
        approvals=kind == "execution",
    )
    meter = RunMeter(
        deps.budgets,
        agent_id=agent_id,
        budget=settings.budget,
        provider=settings.provider,
        model=settings.model,
        namespace=namespace,
    )
    return Run(spec, journal, recorder, sink, meter)
