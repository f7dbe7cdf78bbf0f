"""The group run aggregate (stream ``grouprun-<id>``): pure ``decide`` and ``evolve``.

A run sends its cluster's agents FIPA ``request`` messages whose content is the stage's
input, and folds their ``inform`` (``{"result"}``) / ``failure`` answers:

- ``parallel``: every agent gets the input; the result maps each agent that succeeded to
  its output (the run fails only when every agent failed).
- ``map-reduce`` (≥ 3 agents): the first n-1 agents map — a list input is split into n-1
  contiguous parts (agents whose part is empty sit out), any other input goes whole to each
  — then the last agent reduces the list of the mappers' outputs.
- ``pipeline``: agent k gets agent k-1's output; the last output is the result.
- ``race`` (≥ 2 agents): the first ``inform`` wins; the others get a FIPA ``cancel`` and
  are listed in ``cancelled``.

``timeout_seconds`` bounds the whole run (outstanding agents are cancelled). The budget is
checked against the usage agents report in their answers (``usage``: ``tokens``,
``cost_usd``; :mod:`parley.aggregates.runbudget`); agents that report none are held to
their own budgets.

``decide(state, command, ctx)`` returns the events to append and the requests and cancels
(:class:`~parley.aggregates.mail.Mail`) to send after the append; ``evolve`` folds one
recorded event, for the tasks service and the edge's projection alike.
"""

from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Literal

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import Decision
from parley.aggregates.mail import Mail
from parley.aggregates.mail import reason_of
from parley.aggregates.mail import usage_of
from parley.aggregates.runbudget import budget_warning
from parley.aggregates.runbudget import over_budget
from parley.contracts.acl import Performative
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import Budget
from parley.contracts.tasks import RUN_EVENT_TYPES
from parley.contracts.tasks import GroupStrategy
from parley.contracts.tasks import RunAgentResult
from parley.contracts.tasks import RunBudgetWarning
from parley.contracts.tasks import RunFinishedEvent
from parley.contracts.tasks import RunRequested
from parley.contracts.tasks import RunStarted
from parley.contracts.tasks import run_stream

__all__ = [
    "CATEGORY",
    "FOLDS",
    "MIN_AGENTS",
    "Abort",
    "Command",
    "Request",
    "Run",
    "RunDecision",
    "RunPlan",
    "RunReply",
    "RunTick",
    "Start",
    "decide",
    "evolve",
    "pending_mail",
    "split",
]

CATEGORY = run_stream.category
"""The stream category this aggregate folds (``grouprun-<id>``)."""
FOLDS: frozenset[str] = frozenset({*RUN_EVENT_TYPES})
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""

MIN_AGENTS: dict[str, int] = {"parallel": 1, "pipeline": 1, "race": 2, "map-reduce": 3}
_P = Performative


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """A request sent to one agent."""

    agent_id: str
    stage: str
    message_id: str
    input: Any = None


class RunPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a run is asked to do: the fields its start command, its start event and the run
    itself share."""

    cluster: str
    strategy: GroupStrategy
    agent_ids: tuple[str, ...]
    """The cluster's agents, in manifest order."""
    input: Any
    budget: Budget | None = None
    timeout_seconds: float = 120


class Run(RunPlan, frozen=True, kw_only=True):
    """A group run as folded from its stream."""

    id: str
    namespace: str
    started_at: datetime
    version: int
    updated_at: datetime
    status: Literal["running", "completed", "failed"] = "running"
    requests: dict[str, Request] = {}
    """By message id, in the order sent."""
    results: dict[str, RunAgentResult] = {}
    """By the request's message id."""
    result: Any = None
    winner: str | None = None
    cancelled: tuple[str, ...] = ()
    error: str | None = None
    finished_at: datetime | None = None
    warned: bool = False
    """`grouprun.budget_warning` was recorded (once per run)."""

    @property
    def outstanding(self) -> list[Request]:
        """Requests without an answer yet."""
        return [r for m, r in self.requests.items() if m not in self.results]

    @property
    def deadline(self) -> datetime | None:
        """When a running run times out."""
        if self.status != "running":
            return None
        return self.started_at + timedelta(seconds=self.timeout_seconds)

    @property
    def spent(self) -> tuple[float, float]:
        """Tokens and cost the agents reported."""
        tokens = sum(r.usage.get("tokens", 0.0) for r in self.results.values())
        cost = sum(r.usage.get("cost_usd", 0.0) for r in self.results.values())
        return tokens, cost


def evolve(state: Run | None, event: Event) -> Run | None:
    """Fold one recorded event into a run."""
    payload_type = RUN_EVENT_TYPES.get(event.type)
    if event.type == "grouprun.started":
        started = msgspec.convert(event.data, Start)  # a RunStarted's fields, agent ids a tuple
        return Run(
            id=started.run_id,
            namespace=event.namespace,
            started_at=event.time,
            version=event.version,
            updated_at=event.time,
            **_plan(started),
        )
    if state is None:
        return None
    if payload_type is None:
        return msgspec.structs.replace(state, version=event.version)
    bump: dict[str, Any] = {"version": event.version, "updated_at": event.time}
    data = msgspec.convert(event.data, payload_type)
    match data:
        case RunRequested():
            request = Request(
                agent_id=data.agent_id,
                stage=data.stage,
                message_id=data.message_id,
                input=data.input,
            )
            bump["requests"] = {**state.requests, data.message_id: request}
        case RunAgentResult():
            key = _request_of(state, data.agent_id, data.stage)
            if key is not None:
                bump["results"] = {**state.results, key: data}
        case RunBudgetWarning():
            bump["warned"] = True
        case RunFinishedEvent():
            bump |= {
                "status": "completed" if event.type == "grouprun.completed" else "failed",
                "result": data.result,
                "winner": data.winner,
                "cancelled": tuple(data.cancelled),
                "error": data.error,
                "finished_at": event.time,
            }
    return msgspec.structs.replace(state, **bump)


def _plan(plan: RunPlan) -> dict[str, Any]:
    """The :class:`RunPlan` fields of ``plan``, to start a struct that shares them."""
    return {name: getattr(plan, name) for name in RunPlan.__struct_fields__}


def _request_of(state: Run, agent_id: str, stage: str) -> str | None:
    for message_id, request in state.requests.items():
        if request.agent_id == agent_id and request.stage == stage:
            return message_id
    return None


# --- commands ----------------------------------------------------------------------------


class Start(RunPlan, frozen=True, kw_only=True):
    """Start a run over ``agent_ids`` (the cluster's, in manifest order)."""

    run_id: str


class RunReply(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's answer (from the inbox)."""

    performative: str
    sender: str
    in_reply_to: str | None = None
    content: Any = None


class RunTick(msgspec.Struct, frozen=True, kw_only=True):
    """The run's timer fired."""


class Abort(msgspec.Struct, frozen=True, kw_only=True):
    """End the run as failed: it cannot go on (an answer, or the result it makes, is too
    large to record)."""

    error: str


Command = Start | RunReply | RunTick | Abort
RunDecision = Decision[Mail]
"""Events to append and messages to send after the append."""
_NOTHING: RunDecision = Decision()


def decide(state: Run | None, command: Command, ctx: Context) -> RunDecision:
    """What ``command`` does to the run at ``ctx.now``.

    Raises:
        ParleyError: ``VALIDATION_ERROR`` (too few agents for the strategy),
            ``CONCURRENCY_CONFLICT`` (the id is taken) or ``RUN_NOT_FOUND``.
    """
    if isinstance(command, Start):
        if state is not None:
            raise ParleyError(ErrorCode.CONCURRENCY_CONFLICT, f"run id {command.run_id!r} is taken")
        return _start(command, ctx)
    if state is None:
        raise ParleyError(ErrorCode.RUN_NOT_FOUND, "no such run")
    if state.status != "running":
        return _NOTHING
    if isinstance(command, Abort):
        return _finish(state, [], ok=False, error=command.error, ctx=ctx)
    if isinstance(command, RunTick):
        deadline = state.deadline
        if deadline is None or ctx.now < deadline:
            return _NOTHING
        return _finish(
            state, [], ok=False, error=f"timed out after {state.timeout_seconds:g}s", ctx=ctx
        )
    return _reply(state, command, ctx)


def _start(cmd: Start, ctx: Context) -> RunDecision:
    agents = tuple(dict.fromkeys(cmd.agent_ids))
    needed = MIN_AGENTS[cmd.strategy]
    if len(agents) < needed:
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"strategy {cmd.strategy} needs at least {needed} agents; the cluster has"
            f" {len(agents)}",
        )
    started = RunStarted(run_id=cmd.run_id, **{**_plan(cmd), "agent_ids": list(agents)})
    events: Decided = [("grouprun.started", started)]
    mail: list[Mail] = []
    wave: list[tuple[str, str, Any]]
    if cmd.strategy in ("parallel", "race"):
        wave = [(agent, cmd.strategy, cmd.input) for agent in agents]
    elif cmd.strategy == "pipeline":
        wave = [(agents[0], "pipeline[0]", cmd.input)]
    else:
        mappers = agents[:-1]
        wave = [
            (agent, "map", part)
            for agent, part in zip(mappers, split(cmd.input, len(mappers)), strict=True)
            if part is not _SKIP
        ]
    for agent, stage, value in wave:
        _request(cmd.run_id, agent, stage, value, events, mail, ctx)
    return Decision(events=events, effects=mail)


def _request(
    run_id: str,
    agent: str,
    stage: str,
    value: Any,
    events: Decided,
    mail: list[Mail],
    ctx: Context,
) -> None:
    message_id = ctx.mint()
    event = RunRequested(
        run_id=run_id, agent_id=agent, stage=stage, message_id=message_id, input=value
    )
    events.append(("grouprun.requested", event))
    mail.append(_request_mail(event))


def _request_mail(request: RunRequested | Request) -> Mail:
    return Mail(
        message_id=request.message_id,
        performative=_P.REQUEST,
        receivers=(request.agent_id,),
        content=request.input,
    )


class _Skip:
    pass


_SKIP: Any = _Skip()


def split(value: Any, parts: int) -> list[Any]:
    """``value`` for each of ``parts`` mappers: list parts (``_SKIP`` when empty) or copies."""
    if not isinstance(value, list) or not value:
        return [value] * parts
    size = len(value)
    bounds = [-(-k * size // parts) for k in range(parts + 1)]  # ceil: earlier agents first
    chunks = [value[bounds[k] : bounds[k + 1]] for k in range(parts)]
    return [chunk if chunk else _SKIP for chunk in chunks]


def _reply(state: Run, reply: RunReply, ctx: Context) -> RunDecision:
    if reply.performative not in (_P.INFORM, _P.FAILURE, _P.REFUSE, _P.NOT_UNDERSTOOD):
        return _NOTHING
    request = state.requests.get(reply.in_reply_to or "")
    if request is None or request.agent_id != reply.sender:
        request = next((r for r in state.outstanding if r.agent_id == reply.sender), None)
    if request is None or request.message_id in state.results:
        return _NOTHING
    ok = reply.performative == _P.INFORM
    content = reply.content
    result = RunAgentResult(
        run_id=state.id,
        agent_id=request.agent_id,
        stage=request.stage,
        ok=ok,
        output=(content.get("result") if isinstance(content, dict) else content) if ok else None,
        error=None if ok else reason_of(content, default=reply.performative, text=False),
        usage=usage_of(content),
    )
    events: Decided = [("grouprun.agent_result", result)]
    after = msgspec.structs.replace(state, results={**state.results, request.message_id: result})
    tokens, cost = after.spent
    over = over_budget(after.budget, tokens, cost)
    if over:
        return _finish(after, events, ok=False, error=over, ctx=ctx)
    warning = budget_warning(after.id, after.budget, tokens, cost)
    if not after.warned and warning is not None:
        events.append(("grouprun.budget_warning", warning))
        after = msgspec.structs.replace(after, warned=True)
    return _advance(after, events, request, result, ctx)


def _advance(
    state: Run,
    events: Decided,
    request: Request,
    result: RunAgentResult,
    ctx: Context,
) -> RunDecision:
    strategy = state.strategy
    results = [state.results[m] for m in state.requests if m in state.results]
    if strategy == "race":
        if result.ok:
            return _finish(
                state, events, ok=True, result=result.output, winner=result.agent_id, ctx=ctx
            )
        if not state.outstanding:
            return _finish(state, events, ok=False, error=_errors(results), ctx=ctx)
        return Decision(events=events)
    if strategy == "parallel":
        if state.outstanding:
            return Decision(events=events)
        outputs = {r.agent_id: r.output for r in results if r.ok}
        if not outputs:
            return _finish(state, events, ok=False, error=_errors(results), ctx=ctx)
        return _finish(state, events, ok=True, result=outputs, ctx=ctx)
    if strategy == "pipeline":
        if not result.ok:
            return _finish(state, events, ok=False, error=_errors([result]), ctx=ctx)
        index = int(request.stage.removeprefix("pipeline[").rstrip("]"))
        if index + 1 >= len(state.agent_ids):
            return _finish(state, events, ok=True, result=result.output, ctx=ctx)
        mail: list[Mail] = []
        _request(
            state.id,
            state.agent_ids[index + 1],
            f"pipeline[{index + 1}]",
            result.output,
            events,
            mail,
            ctx,
        )
        return Decision(events=events, effects=mail)
    # map-reduce
    if request.stage == "reduce":
        if result.ok:
            return _finish(state, events, ok=True, result=result.output, ctx=ctx)
        return _finish(state, events, ok=False, error=_errors([result]), ctx=ctx)
    if state.outstanding:
        return Decision(events=events)
    mapped = [r.output for r in results if r.ok and r.stage == "map"]
    if not mapped:
        return _finish(state, events, ok=False, error=_errors(results), ctx=ctx)
    mail = []
    _request(state.id, state.agent_ids[-1], "reduce", mapped, events, mail, ctx)
    return Decision(events=events, effects=mail)


def _finish(
    state: Run,
    events: Decided,
    *,
    ok: bool,
    ctx: Context,
    result: Any = None,
    winner: str | None = None,
    error: str | None = None,
) -> RunDecision:
    """End the run; agents still working get a FIPA `cancel`."""
    cancelled = list(dict.fromkeys(r.agent_id for r in state.outstanding))
    finished = RunFinishedEvent(
        run_id=state.id, result=result, winner=winner, cancelled=cancelled, error=error
    )
    mail = [
        Mail(
            message_id=ctx.mint(),
            performative=_P.CANCEL,
            receivers=(agent,),
            content={"run_id": state.id, "reason": "the run ended"},
        )
        for agent in cancelled
    ]
    kind = "grouprun.completed" if ok else "grouprun.failed"
    return Decision(events=[*events, (kind, finished)], effects=mail)


def pending_mail(state: Run) -> list[Mail]:
    """Requests a running run must have sent (for a restart to send any that were lost)."""
    if state.status != "running":
        return []
    return [_request_mail(r) for r in state.outstanding]


def _errors(results: list[RunAgentResult]) -> str:
    failed = [f"{r.agent_id}: {r.error}" for r in results if not r.ok]
    return "; ".join(failed) or "no agent succeeded"
